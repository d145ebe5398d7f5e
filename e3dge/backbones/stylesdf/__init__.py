"""StyleSDF: the SDF generator and decoder (network), the official checkpoint import, and its Backbone adapter."""
