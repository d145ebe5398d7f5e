"""Volume rendering shared by the backbones: ray sampling, stratified and importance samples, compositing."""
