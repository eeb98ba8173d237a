"""Repeated failed logins lock the account out, and the lockout is kept in the database."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import override_settings

from mediation.accounts.models import User

pytestmark = pytest.mark.django_db


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_out_even_the_right_one(client) -> None:
    User.objects.create_user("tiaojie9", password="correct-horse-9")
    for _ in range(3):
        client.post("/admin/login/", {"username": "tiaojie9", "password": "wrong"})

    response = client.post("/admin/login/", {"username": "tiaojie9", "password": "correct-horse-9"})

    assert response.status_code == 429
    assert AccessAttempt.objects.filter(username="tiaojie9").count() == 1
    assert AccessAttempt.objects.get(username="tiaojie9").failures_since_start >= 3
