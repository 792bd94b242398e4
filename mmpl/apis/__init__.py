"""High-level APIs (``import mmpl.apis``; not imported by ``import mmpl``)."""
from .inference import PromptInferencer  # noqa: F401
from .inference import list_images, read_class_names  # noqa: F401
