"""Management API v2 of the sandbox. Placeholder: see issue 2."""

from flask import Blueprint

management = Blueprint("management", __name__)
