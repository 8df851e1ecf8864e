"""Labelled beats in: the UCR archive reader (ECG5000 by default) and its splits."""
