"""The wire contract between gateways and the cloud.

Imported by both sides and importing neither: payload models, topics, canonical JSON, Ed25519
signing, director and release documents, and the feature definitions.
"""
