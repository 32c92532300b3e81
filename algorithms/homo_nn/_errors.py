"""Errors of horizontal NN training; each names the party, round or factory involved."""

from __future__ import annotations

from fedspark.common import ConfigError, ProtocolError


class NetworkError(ConfigError):
    """The job's network cannot be built or does not fit the weights it is given."""


class RoundError(ProtocolError):
    """A round cannot go on: too few clients reported, or a peer sent something malformed."""

    def __init__(self, job_id: str, round_no: int, message: str) -> None:
        super().__init__(f"job {job_id}: round {round_no}: {message}")
        self.job_id, self.round_no = job_id, round_no
