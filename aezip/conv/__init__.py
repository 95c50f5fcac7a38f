"""The convolutional codec: a grouped convolutional autoencoder with a mean-scale hyperprior, one model holding a
ladder of rate points (`aezip train --arch conv`), coded by the fixed-point networks of aezip.coding.intconv and the
entropy coder of aezip.coding.hyperprior. Modules: layout (file names and geometry, import-free), network (the
float model), training, integer (a rate point's decode side in fixed point), model (its model file), coding (chunks
of images to bytes and back)."""
