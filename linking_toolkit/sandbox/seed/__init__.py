"""Seeding a sandbox tenant: the demo tenant (``demo.py``) and synthetic tenants of N users
(``synthetic.py``). With ``seed`` set, ids, timestamps and people repeat on every run; passwords,
client secrets and keys are random all the same."""

from ..connections import CONNECTIONS, DATABASE, SOCIAL
from .demo import DEMO_PEOPLE, DemoTenant, reopen_demo_tenant, seed_demo_tenant
from .duplicates import SYNTHETIC_PHONE_REGION
from .synthetic import SyntheticTenant, seed_synthetic_users

__all__ = [
    "CONNECTIONS",
    "DATABASE",
    "DEMO_PEOPLE",
    "SOCIAL",
    "SYNTHETIC_PHONE_REGION",
    "DemoTenant",
    "SyntheticTenant",
    "reopen_demo_tenant",
    "seed_demo_tenant",
    "seed_synthetic_users",
]
