"""The autoencoder: its configuration, network, losses, training loop, tile geometry and data-picked defaults."""
