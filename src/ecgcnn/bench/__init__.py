"""Speed and memory of model files: ``run`` drives one fresh ``worker`` process per file."""
