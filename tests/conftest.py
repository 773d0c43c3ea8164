"""Suite-wide settings."""

import os

# Signing keys made by tests are throwaway: a light KDF keeps the suite fast. The file format and the
# decryption path are the production ones (the round count is stored in each key file).
os.environ.setdefault("IOTSPHERE_KEY_KDF_ROUNDS", "2000")
