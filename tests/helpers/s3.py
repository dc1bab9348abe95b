"""A real S3-compatible object store on 127.0.0.1 for the tests: moto's server mode, in a background thread.

    with LoopbackS3("mdpr-team") as store:     # serves store.url (http://127.0.0.1:PORT) with the bucket created
        ... dvc remote add -d team s3://mdpr-team/dvc-store; dvc remote modify team endpointurl {store.url} ...
        store.objects()                        # {object key: bytes} of everything pushed

It speaks the S3 REST protocol over real HTTP (DVC talks to it through s3fs/aiobotocore as to MinIO), accepts any
credentials (a client with none fails before sending anything), and keeps objects in memory until stopped. Needs
moto[server] (the dev extra).
"""
from __future__ import annotations

import logging

CLIENT_CREDENTIALS = {"aws_access_key_id": "test-admin", "aws_secret_access_key": "test-admin-secret",
                      "region_name": "us-east-1"}
"""What the test's own boto3 client signs with (the store accepts any key)."""


class LoopbackS3:
    """Context manager running moto's S3 server on 127.0.0.1 with one bucket."""

    def __init__(self, bucket: str):
        from moto.server import ThreadedMotoServer

        self.bucket = bucket
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, **CLIENT_CREDENTIALS)

    def objects(self) -> dict[str, bytes]:
        """Every object of the bucket: key -> content."""
        client = self.client()
        keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for item in page.get("Contents", [])]
        return {key: client.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in keys}

    def __enter__(self) -> "LoopbackS3":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one log line per request
        self._server.start()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()
