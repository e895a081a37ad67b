"""Run target-bigquery with protobuf's `MessageFactory.GetPrototype`, which current protobuf no
longer has, given back: the loader's `storage_write_api` method then gets past building its
message class, as it did on the protobuf it was written for. Only protobuf is changed, never the
loader. Arguments are the loader's.
"""

from google.protobuf import message_factory
from target_bigquery.target import TargetBigQuery

message_factory.MessageFactory.GetPrototype = lambda self, descriptor: message_factory.GetMessageClass(descriptor)  # type: ignore[attr-defined]

if __name__ == "__main__":
    TargetBigQuery.cli()
