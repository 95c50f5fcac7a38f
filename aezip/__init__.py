"""aezip: compress image datasets with a trained sparse autoencoder."""
__version__ = "0.1.0"
