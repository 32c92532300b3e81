"""Column references Spark reads literally: a table's own names may hold dots, spaces or backticks."""

from __future__ import annotations


def column_ref(name: str) -> str:
    """``name`` quoted for Spark (``a.b`` is the column "a.b", not field b of struct a; backticks doubled).

    Every place that names a column from a party's table (features, ids, labels)
    goes through here: an unquoted name with a dot is read as a struct field and
    fails, or worse, picks another column.
    """
    return "`" + name.replace("`", "``") + "`"
