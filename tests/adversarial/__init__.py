"""The adversarial corpus: hostile codecs the sandbox must contain."""
