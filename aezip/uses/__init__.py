"""The autoencoder's other uses: features (embed) and restoration."""
