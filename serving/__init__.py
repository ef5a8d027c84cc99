"""Ray Serve entry points (``serving.app``); the implementation is ``streamer.serve.ray_*``."""
