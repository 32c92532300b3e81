"""The public names of fedspark.algorithms.psi are pinned: changing them is an API change."""

from fedspark.algorithms import psi


def test_exported_names() -> None:
    assert sorted(psi.__all__) == [
        "DuplicateIds",
        "ELEMENT_BYTES",
        "EmptyIntersection",
        "IdType",
        "IdTypeMismatch",
        "InvalidIds",
        "PSI",
        "PeerInputRejected",
        "PsiInputError",
        "PsiParams",
        "PsiProtocolError",
        "PsiResult",
        "align",
        "blind",
        "commit_reveal",
        "hash_and_blind",
        "hash_to_group",
        "random_scalar",
        "reblind",
    ]
    assert all(hasattr(psi, name) for name in psi.__all__)
