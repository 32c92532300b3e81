"""Party tables by URI: where they live, which columns mean what, and whether they are usable.

- :class:`TableSpec` declares a table (URI, id/label/feature columns, format,
  missing-value policy);
- :func:`resolve_uri` / :func:`path_exists` turn locations into ``file://`` or
  ``hdfs://`` URIs and check them through Hadoop's FileSystem API
  (:func:`staging_uri`, :func:`publish` and :func:`discard` let output
  appear under its name only once it is complete and checked);
- :func:`read_table` reads and validates with Spark and returns a
  :class:`PartyTable`, or raises :class:`TableError` naming party, file,
  column and row; a :class:`Tally` folds a caller's aggregates into that
  pass (:func:`check_unique_ids` then names a repeated id, and
  :func:`with_value_check` checks values in the caller's own pass);
- :func:`write_file` / :func:`read_file` move driver-side files (models) to
  and from ``file://``, ``hdfs://`` (Hadoop's FileSystem API) and
  ``webhdfs://`` (the ``hdfs`` package); :func:`write_json` writes a local
  JSON result (metrics, rounds, a model) the one way every layer does.
"""

from fedspark.storage._errors import TableError, TableProblem
from fedspark.storage._files import FILE_SCHEMES, StorageFileError, read_file, resolve_file_uri, write_file, write_json
from fedspark.storage._reader import Tally, ValueCheck, check_unique_ids, read_table, with_value_check
from fedspark.storage._spec import TableFormat, TableSpec
from fedspark.storage._table import PartyTable
from fedspark.storage._uri import (
    SUPPORTED_SCHEMES,
    discard,
    local_bytes,
    path_exists,
    publish,
    resolve_uri,
    staging_uri,
)

__all__ = [
    "FILE_SCHEMES",
    "StorageFileError",
    "read_file",
    "resolve_file_uri",
    "write_file",
    "write_json",
    "SUPPORTED_SCHEMES",
    "PartyTable",
    "TableError",
    "TableFormat",
    "TableProblem",
    "TableSpec",
    "Tally",
    "ValueCheck",
    "check_unique_ids",
    "discard",
    "local_bytes",
    "path_exists",
    "publish",
    "read_table",
    "resolve_uri",
    "staging_uri",
    "with_value_check",
]
