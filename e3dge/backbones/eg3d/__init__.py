"""EG3D: the tri-plane generator (network), its super-resolution, and its Backbone adapter."""
