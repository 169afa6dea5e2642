"""The example's data, kept in memory (an example store, not a real one: nothing survives a
restart, and each replica has its own): candidates per org, derived deterministically, and the
offers sent to them.

Every org has three candidates owned by no one (only an `any` grant reaches them). Every person
who calls gets two candidates of their own the first time (owned by them, so an `own` grant
reaches them). Ids and names are derived from the org and the person, so the same calls give
the same data on every start. Candidates belong to no team: a `team` grant reaches exactly what
`own` reaches here."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

__all__ = ["Candidate", "CandidateBook", "Offer", "OfferBook"]

_NAMES = (
    "Ada Lovelace",
    "Alan Turing",
    "Barbara Liskov",
    "Donald Knuth",
    "Edsger Dijkstra",
    "Grace Hopper",
    "Katherine Johnson",
    "Margaret Hamilton",
)
_POOL_SIZE = 3
_OWN_SIZE = 2


@dataclass(frozen=True, slots=True)
class Candidate:
    """A person applying for a job in `org_id`; `owner_id` is the recruiter ('' for none)."""

    candidate_id: str
    org_id: str
    name: str
    owner_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class Offer:
    """A job offer as sent; `sent_by` is the person it was sent for (an AI's delegating user)."""

    offer_id: str
    org_id: str
    candidate_id: str
    salary: int
    currency: str
    sent_by: str


def _candidate(org_id: str, owner_id: str, index: int) -> Candidate:
    digest = hashlib.sha256(f"{org_id}\n{owner_id}\n{index}".encode()).hexdigest()
    return Candidate(
        candidate_id=f"cand-{digest[:12]}",
        org_id=org_id,
        name=_NAMES[int(digest[12:20], 16) % len(_NAMES)],
        owner_id=owner_id,
        team_id="",
    )


class CandidateBook:
    """The candidates of each org, as described in the module docstring."""

    def __init__(self) -> None:
        self._by_org: dict[str, dict[str, Candidate]] = {}

    def of_org(self, org_id: str, caller_id: str) -> list[Candidate]:
        """Every candidate of the org known so far (the caller's own included), ordered by
        name then id."""
        known = self._by_org.setdefault(
            org_id,
            {c.candidate_id: c for c in (_candidate(org_id, "", i) for i in range(_POOL_SIZE))},
        )
        for index in range(_OWN_SIZE):
            own = _candidate(org_id, caller_id, index)
            known.setdefault(own.candidate_id, own)
        return sorted(known.values(), key=lambda c: (c.name, c.candidate_id))

    def find(self, org_id: str, caller_id: str, candidate_id: str) -> Candidate | None:
        """The org's candidate of that id (the caller's own included), or None."""
        return next(
            (c for c in self.of_org(org_id, caller_id) if c.candidate_id == candidate_id), None
        )


class OfferBook:
    """The offers sent, per org, in order."""

    def __init__(self) -> None:
        self._by_org: dict[str, list[Offer]] = {}

    def send(self, candidate: Candidate, salary: int, currency: str, sent_by: str) -> Offer:
        """Record (that is: send) an offer to `candidate`."""
        offer = Offer(
            offer_id=str(uuid.uuid4()),
            org_id=candidate.org_id,
            candidate_id=candidate.candidate_id,
            salary=salary,
            currency=currency,
            sent_by=sent_by,
        )
        self._by_org.setdefault(candidate.org_id, []).append(offer)
        return offer

    def sent(self, org_id: str) -> list[Offer]:
        """The org's offers, oldest first."""
        return list(self._by_org.get(org_id, ()))
