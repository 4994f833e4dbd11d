"""The lab's handles: settings, the records database and the object store, opened together."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from codeclab.config import Settings
from codeclab.storage.objects import ObjectStore, S3Options, open_store
from codeclab.storage.records import RecordStore
from codeclab.storage.signing import load_or_create_secret


@dataclass
class Lab:
    settings: Settings
    records: RecordStore
    store: ObjectStore

    @classmethod
    def open(cls, settings: Settings) -> Lab:
        """Open the database (upgrading its schema) and the object store the settings name."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(
            settings.store,
            signing_secret=load_or_create_secret(settings.secret_path),
            public_base_url=settings.public_url,
            s3_options=S3Options.from_env(),
        )
        records = RecordStore.open(settings.database)
        return cls(settings, records, store)

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
