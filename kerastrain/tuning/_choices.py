"""The names a search space may choose from (light: no Keras import)."""

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid", "maxout")
INITIALIZERS = (
    "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "orthogonal", "gaussian",
)
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "exponential", "inverse_time", "cosine", "step")
