"""The core every layer stands on: errors, options, the image conversion, cameras and projection, safe Hub loading."""
