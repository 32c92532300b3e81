"""Private set intersection: ECDH over ristretto255, run as Spark jobs over the id column.

:func:`align` restricts each party's table to the ids that the guest and every
host hold, in one agreed order, so that row i is the same person at every
party. Only blinded group elements cross a party boundary; the per-id work
(hash to the group, blind, re-blind) runs in ``mapInArrow`` kernels and the
id column is never collected to a driver. See ``docs/psi.md``.

What each party sees (α: the guest's secret scalar, β_h: host h's, both fresh
per call; H(x) = from_hash(SHA-512(salt || id)) with a per-job salt that all
parties contribute to by commit-reveal):

- **The guest** receives from host h its salt random and commitment, the kind
  of its id column (int or string) and declared id type, whether its checks
  passed, its blinded column {H(y)^β_h} (sorted by value, so its size |H_h| but
  not its order), and the pairs (H(x)^α, H(x)^αβ_h) for the guest's own ids.
  From these it learns, for each host, which of its own ids that host holds
  (the pairwise intersection) and hence the final intersection. For a host id y
  outside the intersection it holds only H(y)^β_h and H(y)^β_hα, which it
  cannot link to any candidate id without β_h (decisional Diffie-Hellman).
- **Host h** receives the guest's salt random and commitment (and the other
  hosts', relayed), the agreed id type, the guest's blinded column {H(x)^α}
  (its size |G|), the size of the final intersection and, for each id in it,
  its own H(y)^β_h with the sort key H(x)^αβ_1. So it learns which of its own
  ids are in the final intersection and nothing about the guest's other ids,
  nor which of its ids matched the guest but not another host.
- **The arbiter** takes no part and sees nothing.

Every party thus learns the intersection (it needs it to train) and the other
parties' set sizes; the guest also learns each pairwise intersection with a
host, as in FATE's guest-led PSI. The protocol is secure against honest-but-
curious parties; a party may refuse (a wrong commitment, a value that is not a
group element, a count that does not add up) but cannot be forced to help a
cheating peer.
"""

from fedspark.algorithms import Algorithm, register
from fedspark.algorithms.psi import commit_reveal
from fedspark.algorithms.psi._errors import (
    DuplicateIds,
    EmptyIntersection,
    IdTypeMismatch,
    InvalidIds,
    PeerInputRejected,
    PsiInputError,
    PsiProtocolError,
)
from fedspark.algorithms.psi._group import ELEMENT_BYTES, blind, hash_to_group, random_scalar
from fedspark.algorithms.psi._ids import IdType, PsiParams
from fedspark.algorithms.psi._kernels import hash_and_blind, reblind
from fedspark.algorithms.psi._protocol import PsiResult, align, run_psi
from fedspark.common import Role

PSI = register(Algorithm(name="psi", params=PsiParams, entry_points=dict.fromkeys(Role, run_psi)))

__all__ = [
    "ELEMENT_BYTES",
    "DuplicateIds",
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
