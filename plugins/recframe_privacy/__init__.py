"""Built-in privacy plugin: the membership-inference audit metric ``mia_auc``."""
