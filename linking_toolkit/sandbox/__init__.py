"""The sandbox tenant: a local server speaking the parts of Auth0's APIs that account linking uses."""

from .server import Sandbox

__all__ = ["Sandbox"]
