"""Authentication API of the sandbox (authlib's authorization server). Placeholder: see issue 2."""

from flask import Blueprint

auth = Blueprint("auth", __name__)
