"""Start bqemulator 1.4.0 for the BigQuery loader, with the emulator's gaps worked around.

Run by tests/test_warehouses.py with the emulator's own environment (requirements.txt beside
this file): `python launch.py CREDENTIALS_FILE [--refuse-gzip]`. It starts the REST and gRPC servers on free
ports, serves an OAuth token endpoint beside the REST API, writes a service-account file whose
`token_uri` points at it, and prints one line of JSON ({"rest": PORT, "grpc": PORT}) once both
servers accept connections. SIGTERM stops it.

Each workaround below changes the emulator only, never the loader, and names the error it avoids.
"""

from __future__ import annotations

import os

# The emulator logs to stdout, some of it on import: its logs go to stderr, and stdout carries only
# the ready line.
READY = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bqemulator import server  # noqa: E402
from bqemulator.api.routes import upload  # noqa: E402
from bqemulator.config import Settings  # noqa: E402
from bqemulator.sql.translator import SQLTranslator  # noqa: E402
from bqemulator.storage import arrow_bridge  # noqa: E402
from bqemulator.storage.engine import DuckDBEngine  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

PROJECT = "aircall-test"

# 1. DuckDB's `spatial` extension is downloaded at startup, and these machines cannot download it:
# "DuckDB spatial extension is required for bqemulator (GEOGRAPHY support). INSTALL/LOAD spatial
# failed". Only GEOGRAPHY needs it, and the tap emits none.
DuckDBEngine._load_spatial = lambda self: None  # type: ignore[method-assign]


# 2. The loader uploads its load jobs' newline-delimited JSON gzipped (BigQuery reads gzip); the
# emulator reads the bytes as they are and fails the job: "400 Error while reading data, error
# message: Invalid Input Error: Malformed JSON in file …, at byte 1". The loader then exits 0 with
# nothing loaded. The uploaded file is gunzipped before the job reads it.
_run_load = upload._run_load


async def _run_gunzipped_load(*, media_path: str, **arguments):  # type: ignore[no-untyped-def]
    path = Path(media_path)
    with path.open("rb") as head:
        zipped = head.read(2) == b"\x1f\x8b"
    if zipped:
        plain = path.with_suffix(".plain")
        with gzip.open(path) as source, plain.open("wb") as target:
            shutil.copyfileobj(source, target)
        plain.replace(path)
    return await _run_load(media_path=media_path, **arguments)


if "--refuse-gzip" not in sys.argv:  # kept to show what the loader does with a refused upload
    upload._run_load = _run_gunzipped_load


# 3. A streaming insert of an object into a JSON column is stored as Python repr (str of a dict),
# which DuckDB then refuses: "Conversion Error: Malformed JSON at byte 1 of input: unexpected
# character. Input: "{'Zoë Label': …}"", answered 500, which the loader retries for minutes.
# BigQuery takes the object as the JSON value: it is written as JSON text.
_coerce = arrow_bridge._coerce_to_arrow_value


def _coerce_json_as_json_text(value, arrow_type, *, field=None):  # type: ignore[no-untyped-def]
    if isinstance(value, (dict, list)) and arrow_bridge._bq_type_metadata(field) == "JSON":
        return json.dumps(value)
    return _coerce(value, arrow_type, field=field)


arrow_bridge._coerce_to_arrow_value = _coerce_json_as_json_text


# 4. The loader's upsert is a MERGE whose `UPDATE SET target.`col` = source.`col`` names the target's
# columns with its alias, as BigQuery allows; DuckDB answers "Parser Error: Qualified column names
# in UPDATE .. SET not supported" (400). The alias is dropped from the SET list only.
_translate = SQLTranslator.translate
UPDATE_SET = re.compile(r"(UPDATE SET .*?)(?= WHEN |;|$)", re.DOTALL)


def _translate_unqualified_set(self, bq_sql: str, **arguments):  # type: ignore[no-untyped-def]
    unqualified = UPDATE_SET.sub(lambda match: re.sub(r"\btarget\.(`[^`]+`) =", r"\1 =", match[1]), bq_sql)
    return _translate(self, unqualified, **arguments)


SQLTranslator.translate = _translate_unqualified_set  # type: ignore[method-assign]


# The loader authenticates with a service-account file; its token request comes here.
_create_app = server.create_app


def _create_app_with_token_endpoint(context):  # type: ignore[no-untyped-def]
    app = _create_app(context)

    @app.post("/token")
    def token() -> dict:
        return {"access_token": "emulator-token", "token_type": "Bearer", "expires_in": 3600}

    return app


server.create_app = _create_app_with_token_endpoint


def service_account(token_uri: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "emulator",
        "private_key": pem.decode(),
        "client_email": f"loader@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


class Launched(server.EmulatorServer):
    async def start(self) -> None:
        await super().start()
        credentials = Path(sys.argv[1])
        credentials.write_text(json.dumps(service_account(f"{self.rest_url}/token")))
        READY.write(json.dumps({"rest": self.rest_port, "grpc": self.grpc_port}) + "\n")
        READY.flush()


if __name__ == "__main__":
    settings = Settings(rest_port=0, grpc_port=0, default_project_id=PROJECT, log_level="warning")  # type: ignore[call-arg]
    Launched(settings).run_forever()
