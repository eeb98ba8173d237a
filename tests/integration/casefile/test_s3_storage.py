"""The S3-compatible path (FILE_STORAGE=s3, django-storages) against a real S3 server on
loopback: moto in server mode (its HTTP server, not a mock of the client). The upload, the
download through the access rule and the dossier all go through Django's storage API."""

from __future__ import annotations

import socket

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mediation.accounts.models import Role
from mediation.casefiles import content
from mediation.casefiles.models import Attachment
from mediation.cases.services import case_service_action
from tests.factories.accounts import staff
from tests.factories.agencies import township_tree
from tests.factories.cases import dispute_in_state
from tests.integration.casefile.conftest import pdf_bytes, png_bytes

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("mediation.urls"),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    # moto's server and botocore warn about their own internals
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]
BUCKET = "mediation-casefiles"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(settings):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test-key",
                "secret_key": "test-secret",
                "addressing_style": "path",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    try:
        yield client
    finally:
        server.stop()


def test_files_go_to_the_object_store_and_come_back_through_the_access_rule(s3, now):
    t = township_tree()
    case = dispute_in_state("mediating", township=t, now=now)
    mediator = staff(t.committee, Role.MEDIATOR)
    data = pdf_bytes(2, "S3 evidence")

    for name, body, doc_type in (
        ("证据.pdf", data, "evidence"),
        ("照片.png", png_bytes(), "identity"),
    ):
        case_service_action(
            case_id=case.pk,
            name="upload_attachment",
            actor=mediator,
            now=now,
            data={"doc_type": doc_type},
            files={"file": SimpleUploadedFile(name, body)},
        )

    assert type(content.storage()).__name__ == "S3Storage"
    rows = list(Attachment.objects.filter(case=case).order_by("pk"))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {r.stored_name for r in rows}
    assert s3.get_object(Bucket=BUCKET, Key=rows[0].stored_name)["Body"].read() == data
    web = Client()
    web.force_login(mediator)
    response = web.get(f"/cases/{case.pk}/attachments/{rows[0].pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    outsider = Client()
    outsider.force_login(staff(township_tree().committee, Role.MEDIATOR))
    assert outsider.get(f"/cases/{case.pk}/attachments/{rows[0].pk}/").status_code == 404
    dossier = web.get(f"/cases/{case.pk}/dossier.pdf")
    assert dossier.status_code == 200
    assert b"%PDF" in dossier.content[:8]
