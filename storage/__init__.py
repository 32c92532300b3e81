"""Party tables by URI: where they live, which columns mean what, and whether they are usable.

- :class:`TableSpec` declares a table (URI, id/label/feature columns, format,
  missing-value policy);
- :func:`resolve_uri` / :func:`path_exists` turn locations into ``file://`` or
  ``hdfs://`` URIs and check them through Hadoop's FileSystem API;
- :func:`read_table` reads and validates with Spark and returns a
  :class:`PartyTable`, or raises :class:`TableError` naming party, file,
  column and row;
- :func:`write_file` / :func:`read_file` move driver-side files (models) to
  and from ``file://``, ``hdfs://`` (Hadoop's FileSystem API) and
  ``webhdfs://`` (the ``hdfs`` package).
"""

from fedspark.storage._errors import TableError, TableProblem
from fedspark.storage._files import FILE_SCHEMES, StorageFileError, read_file, resolve_file_uri, write_file
from fedspark.storage._reader import read_table
from fedspark.storage._spec import TableFormat, TableSpec
from fedspark.storage._table import PartyTable
from fedspark.storage._uri import SUPPORTED_SCHEMES, path_exists, resolve_uri

__all__ = [
    "FILE_SCHEMES",
    "StorageFileError",
    "read_file",
    "resolve_file_uri",
    "write_file",
    "SUPPORTED_SCHEMES",
    "PartyTable",
    "TableError",
    "TableFormat",
    "TableProblem",
    "TableSpec",
    "path_exists",
    "read_table",
    "resolve_uri",
]
