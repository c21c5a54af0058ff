"""Test-suite settings: hypothesis runs derandomised so CI is repeatable (same examples every run)."""
from hypothesis import HealthCheck, settings

settings.register_profile("memxbar", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("memxbar")
