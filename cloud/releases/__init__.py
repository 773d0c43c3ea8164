"""Signed releases: the TUF image repository, encrypted keys, director documents and their publisher."""
