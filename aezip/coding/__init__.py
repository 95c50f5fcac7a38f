"""Entropy coding and the bit-exact decoders: latent coders, the integer decoder, the max-error and pixel coders."""
