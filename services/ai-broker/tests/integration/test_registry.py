"""The action registry over gRPC (I5, D1, D2): a real broker, a real authz, and the example product
service `recruitment` registering its permissions and actions the way it does at start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from helios.kernel.action_registry import action_registration_task
from helios.kernel.clients import call_metadata, secure_channel
from helios.kernel.permission_catalog import registration_task
from helios.kernel.principal import AssertionSigner, AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.status import DETAILS_KEY
from helios.kernel.testing.audit_events import AuditEvents
from helios.kernel.tls import CertFiles
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.recruitment.v1 import recruitment_pb2, recruitment_pb2_grpc
from helios.recruitment_example.authz_gate import AuthzGate
from helios.recruitment_example.candidates import CandidateBook, OfferBook
from helios.recruitment_example.catalog import RECRUITMENT_ACTIONS, RECRUITMENT_PERMISSIONS
from helios.recruitment_example.servicer import RecruitmentServicer
from helios.recruitment_example.wiring import SERVICE_NAME

from .conftest import AuthzServer, BrokerServer, StartBroker

pytestmark = pytest.mark.integration

TARGETS = {"recruitment": "localhost:1"}
LIST, OFFER = RECRUITMENT_ACTIONS
Metadata = tuple[tuple[str, str | bytes], ...]


def principal(actor_type: int, org_id: str, user_id: str) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=actor_type,  # type: ignore[arg-type]
        actor_id=user_id,
        org_id=org_id,
        session_id=str(uuid.uuid4()),
    )


def user(signer: AssertionSigner, org_id: str, user_id: str) -> Metadata:
    """A user principal as the gateway forwards it."""
    signed = signer.sign(principal(principal_pb2.ACTOR_TYPE_USER, org_id, user_id))
    return call_metadata(assertion=signed)


def ai(broker_key: Ed25519PrivateKey, org_id: str, user_id: str) -> Metadata:
    """An AI principal acting for `user_id`, signed by the broker's key."""
    signed = AssertionSigner(broker_key).sign(
        principal(principal_pb2.ACTOR_TYPE_AI, org_id, user_id)
    )
    return call_metadata(assertion=signed)


def field_of(error: grpc.aio.AioRpcError) -> str:
    """The field named by the BadRequest detail of a refusal."""
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY:
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    field: str = bad.field_violations[0].field
                    return field
    raise AssertionError("no BadRequest detail")


def register(
    *actions: ai_broker_pb2.ActionDefinition, service: str = "recruitment"
) -> ai_broker_pb2.RegisterActionsRequest:
    return ai_broker_pb2.RegisterActionsRequest(service=service, actions=actions)


def changed(
    definition: ai_broker_pb2.ActionDefinition, **fields: object
) -> ai_broker_pb2.ActionDefinition:
    copy = ai_broker_pb2.ActionDefinition()
    copy.CopyFrom(definition)
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


async def listed(
    stub: ai_broker_pb2_grpc.AiBrokerServiceStub, metadata: Metadata, **request: object
) -> dict[str, bool]:
    """Every action the caller lists (all pages), name -> dangerous."""
    found: dict[str, bool] = {}
    token = ""
    while True:
        reply = await stub.ListActions(
            ai_broker_pb2.ListActionsRequest(page_token=token, **request),  # type: ignore[arg-type]
            metadata=metadata,
            timeout=10,
        )
        found.update({a.definition.name: a.dangerous for a in reply.actions})
        token = reply.next_page_token
        if not token:
            return found


async def test_i5_registration_replaces_the_set_idempotently_and_audited(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    db_connection: AsyncConnection,
) -> None:
    """I5: the first registration adds; the same set again changes and audits nothing; a new set
    adds, changes and removes in one go; the registry serves exactly the set last registered."""
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    broker = await start_broker(action_targets=TARGETS)
    service = broker.stub("recruitment")
    audit = AuditEvents(db_connection, "ai_broker")
    await audit.mark()

    first = await service.RegisterActions(register(LIST, OFFER), timeout=10)
    assert list(first.added_names) == [LIST.name, OFFER.name]
    assert not first.changed_names
    assert not first.removed_names
    event = await audit.expect_one(
        "ai.action.register",
        resource_type="ai.action",
        resource_id="recruitment",
        actor_type=principal_pb2.ACTOR_TYPE_SYSTEM,
        diff={"added": [LIST.name, OFFER.name], "changed": [], "removed": []},
    )
    assert event.input_hash

    again = await service.RegisterActions(register(OFFER, LIST), timeout=10)
    assert (again.added_names, again.changed_names, again.removed_names) == ([], [], [])
    await audit.expect_none("an unchanged set")

    read = changed(
        LIST, name="recruitment.candidate.read", ai_allowed=False, summary_template="Read one"
    )
    reworded = changed(LIST, description="List candidates")
    replaced = await service.RegisterActions(register(reworded, read), timeout=10)
    assert list(replaced.added_names) == [read.name]
    assert list(replaced.changed_names) == [LIST.name]
    assert list(replaced.removed_names) == [OFFER.name]
    await audit.expect_one(
        "ai.action.register",
        diff={"added": [read.name], "changed": [LIST.name], "removed": [OFFER.name]},
    )

    owner_call = user(user_signer, org, owner)
    stub = broker.stub()
    assert await listed(stub, owner_call) == {LIST.name: False, read.name: False}
    assert await listed(stub, owner_call, ai_allowed_only=True) == {LIST.name: False}
    reply = await stub.ListActions(ai_broker_pb2.ListActionsRequest(), metadata=owner_call)
    served = {a.definition.name: a for a in reply.actions}[LIST.name]
    assert served.service == "recruitment"
    assert served.definition.description == "List candidates"
    assert served.definition.input_schema == LIST.input_schema
    assert served.definition.target_method == LIST.target_method
    assert served.update_time.seconds > 0


async def test_i5_a_service_registers_only_as_itself_and_only_its_own_actions(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    db_connection: AsyncConnection,
) -> None:
    """I5: another service's name, a caller with a principal, a service the broker does not
    call, or an action of another module: refused, and nothing is registered or audited."""
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    broker = await start_broker(action_targets=TARGETS)
    audit = AuditEvents(db_connection, "ai_broker")
    await audit.mark()

    refusals: list[tuple[str, ai_broker_pb2.RegisterActionsRequest, Metadata, grpc.StatusCode]] = [
        ("recruitment", register(LIST, service="identity"), (), grpc.StatusCode.PERMISSION_DENIED),
        ("identity", register(LIST, service="recruitment"), (), grpc.StatusCode.PERMISSION_DENIED),
        (
            "recruitment",
            register(LIST),
            user(user_signer, org, owner),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        ("gateway", register(service="gateway"), (), grpc.StatusCode.PERMISSION_DENIED),
        ("identity", register(LIST, service="identity"), (), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "recruitment",
            register(changed(LIST, name="payroll.run.list")),
            (),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for caller, request, metadata, code in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await broker.stub(caller).RegisterActions(request, metadata=metadata, timeout=10)
        assert refused.value.code() == code, (caller, request.service, refused.value.details())
    assert "only its own actions" in (refused.value.details() or "")
    assert field_of(refused.value) == "actions[0].name"

    unknown = await start_broker()  # no HELIOS_ACTION_TARGETS: it calls no product service
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await unknown.stub("recruitment").RegisterActions(register(LIST), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "HELIOS_ACTION_TARGETS" in (refused.value.details() or "")

    await audit.expect_none("refused registrations")
    assert await listed(broker.stub(), user(user_signer, org, owner)) == {}


@pytest.mark.parametrize(
    ("service", "name", "permission"),
    [
        ("identity", "identity.apiKey.create", "identity.apiKey.create"),
        ("identity", "iam.user.impersonate", "iam.user.impersonate"),
        ("authz", "authz.roleAssignment.create", "authz.roleAssignment.create"),
        ("authz", "authz.role.update", "authz.role.update"),
        ("authz", "authz.userType.assign", "authz.userType.assign"),
        ("recruitment", "recruitment.candidate.list", "ai.session.create"),
        ("recruitment", "recruitment.role.assign", "recruitment.role.assign"),
    ],
)
async def test_i2_never_for_ai_actions_cannot_be_registered_ai_allowed(
    start_broker: StartBroker, authz: AuthzServer, service: str, name: str, permission: str
) -> None:
    """I2: API keys, impersonation, role or permission changes and the AI's own rights are
    refused as ai_allowed (INVALID_ARGUMENT naming ai_allowed), whatever service registers
    them; registered without ai_allowed they are accepted (for people only)."""
    broker = await start_broker(action_targets=TARGETS)
    stub = broker.stub(service)
    action = changed(LIST, name=name, permission=permission)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RegisterActions(register(action, service=service), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "never allowed to an AI" in (refused.value.details() or "")
    assert field_of(refused.value) == "actions[0].ai_allowed"
    kept = changed(action, ai_allowed=False)
    reply = await stub.RegisterActions(register(kept, service=service), timeout=10)
    assert list(reply.added_names) == [name]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"permission": "recruitment offer"}, "permission", "<module>.<entity>.<verb>"),
        ({"target_method": "SendOffer"}, "target_method", "/<package>.<Service>/<Method>"),
        ({"summary_template": "Send {bonus} now"}, "summary_template", "names bonus"),
        ({"summary_template": "Send {salary!r}"}, "summary_template", "placeholders"),
        ({"description": ""}, "description", "1-300 characters"),
    ],
)
async def test_i5_bad_definitions_are_refused_naming_the_field(
    start_broker: StartBroker,
    authz: AuthzServer,
    fields: dict[str, object],
    field: str,
    message: str,
) -> None:
    """I5: a malformed permission, target or summary template is INVALID_ARGUMENT naming the
    field of the offending action (here the second one)."""
    broker = await start_broker(action_targets=TARGETS)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await broker.stub("recruitment").RegisterActions(
            register(LIST, changed(OFFER, **fields)), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (refused.value.details() or "")
    assert field_of(refused.value) == f"actions[1].{field}"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "object", "properties": {"salary": {"type": "money"}}}, "not a valid JSON"),
        ({"type": "array", "items": {}}, "type object"),
        ({"type": "object", "properties": {"a": {"$ref": "https://x.test/a"}}}, "inside itself"),
    ],
)
async def test_i5_bad_input_schemas_are_refused(
    start_broker: StartBroker, authz: AuthzServer, schema: dict[str, object], message: str
) -> None:
    """I5: the input schema must be a valid draft 2020-12 schema of an object that refers to
    nothing outside itself."""
    broker = await start_broker(action_targets=TARGETS)
    bad = changed(LIST)
    bad.input_schema.Clear()
    bad.input_schema.update(schema)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await broker.stub("recruitment").RegisterActions(register(bad), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (refused.value.details() or "")
    assert field_of(refused.value) == "actions[0].input_schema"


@dataclass
class Recruitment:
    """The example product service, running, and its stores."""

    stub: recruitment_pb2_grpc.RecruitmentServiceStub
    offers: OfferBook


@pytest.fixture
async def recruitment(
    authz: AuthzServer,
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
    broker_key: Ed25519PrivateKey,
) -> AsyncIterator[Recruitment]:
    """The example service wired like its wiring.py against the in-process authz, its
    permissions registered the way it registers them at start; called as the broker."""
    authz_target = f"localhost:{authz.grpc_service.port}"
    await registration_task(
        "recruitment", RECRUITMENT_PERMISSIONS, authz_target, pki["recruitment"]
    )(asyncio.Event())
    gate = AuthzGate(authz_target, pki["recruitment"])
    offers = OfferBook()
    servicer = RecruitmentServicer(gate, CandidateBook(), offers)
    verifier = AssertionVerifier(
        [load_public_key(principal_keys[1])], ai_keys=[broker_key.public_key()]
    )
    server = GrpcService("recruitment", pki["recruitment"], verifier)
    server.add_service(
        SERVICE_NAME,
        lambda s: recruitment_pb2_grpc.add_RecruitmentServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    channel = secure_channel(f"localhost:{port}", pki["ai-broker"])
    yield Recruitment(recruitment_pb2_grpc.RecruitmentServiceStub(channel), offers)
    await channel.close()
    await gate.close()
    await server.stop(0)


async def _register_at_start(broker: BrokerServer) -> None:
    """The example's action registration, as its start-up runs it against the broker."""
    await action_registration_task(
        "recruitment", RECRUITMENT_ACTIONS, f"localhost:{broker.port}", broker.pki["recruitment"]
    )(asyncio.Event())


async def test_d1_d2_list_actions_flags_offers_dangerous_and_an_org_mark_at_once(
    start_broker: StartBroker,
    authz: AuthzServer,
    recruitment: Recruitment,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """D1: recruitment.offer.send (an outbound offer) is dangerous, recruitment.candidate.list
    is not. D2: once an org marks candidate.list dangerous, ListActions says so for that org at
    once, for people and their AIs alike, and not for another org."""
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    other_org, other_owner = str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    await authz.seed_org(other_org, other_owner)
    broker = await start_broker(action_targets=TARGETS)
    await _register_at_start(broker)
    stub = broker.stub()
    defaults = {LIST.name: False, OFFER.name: True}
    assert await listed(stub, user(user_signer, org, owner)) == defaults
    assert await listed(stub, ai(broker_key, org, owner)) == defaults

    await authz.admin.SetDangerousActions(
        authz_pb2.SetDangerousActionsRequest(org_id=org, permissions=[LIST.name]), timeout=10
    )
    marked = {LIST.name: True, OFFER.name: True}
    assert await listed(stub, user(user_signer, org, owner)) == marked
    assert await listed(stub, ai(broker_key, org, owner)) == marked
    assert await listed(stub, user(user_signer, other_org, other_owner)) == defaults


async def test_i5_list_actions_pages_and_refuses_outsiders(
    start_broker: StartBroker,
    authz: AuthzServer,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """I5: pages in name order; an AI sees only ai_allowed actions whatever it asks; another
    org, a member without ai.action.list, or a call without a principal is refused."""
    org, owner, member = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    broker = await start_broker(action_targets=TARGETS)
    hidden = changed(OFFER, name="recruitment.offer.withdraw", ai_allowed=False)
    await broker.stub("recruitment").RegisterActions(register(LIST, OFFER, hidden), timeout=10)
    stub = broker.stub()
    owner_call = user(user_signer, org, owner)

    first = await stub.ListActions(
        ai_broker_pb2.ListActionsRequest(page_size=2), metadata=owner_call, timeout=10
    )
    assert [a.definition.name for a in first.actions] == [LIST.name, OFFER.name]
    assert first.next_page_token
    second = await stub.ListActions(
        ai_broker_pb2.ListActionsRequest(page_size=2, page_token=first.next_page_token),
        metadata=owner_call,
        timeout=10,
    )
    assert [a.definition.name for a in second.actions] == [hidden.name]
    assert not second.next_page_token
    assert set(await listed(stub, ai(broker_key, org, owner), ai_allowed_only=False)) == {
        LIST.name,
        OFFER.name,
    }

    await authz.grant(org, member, "Prompter", [("ai.prompt.build", authz_pb2.SCOPE_OWN)])
    denied, invalid = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT
    refusals: list[tuple[Metadata, ai_broker_pb2.ListActionsRequest, grpc.StatusCode]] = [
        (user(user_signer, org, member), ai_broker_pb2.ListActionsRequest(), denied),
        (ai(broker_key, org, member), ai_broker_pb2.ListActionsRequest(), denied),
        (owner_call, ai_broker_pb2.ListActionsRequest(org_id=str(uuid.uuid4())), denied),
        (owner_call, ai_broker_pb2.ListActionsRequest(page_size=-1), invalid),
        ((), ai_broker_pb2.ListActionsRequest(), grpc.StatusCode.UNAUTHENTICATED),
    ]
    for metadata, request, code in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListActions(request, metadata=metadata, timeout=10)
        assert refused.value.code() == code, refused.value.details()


async def test_i5_the_example_service_lists_within_scopes_for_people_and_their_ais(
    authz: AuthzServer,
    recruitment: Recruitment,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """The example product service checks every call with authz as the principal it carries: a
    user with `own` scope sees only their own candidates, one with `any` sees the org's, one
    without the permission is refused; an AI principal acting for a user sees what that user
    sees."""
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    alice, bob, carol = (str(uuid.uuid4()) for _ in range(3))
    await authz.seed_org(org, owner)
    await authz.grant(org, alice, "Own recruiter", [(LIST.name, authz_pb2.SCOPE_OWN)])
    await authz.grant(org, bob, "Head of hiring", [(LIST.name, authz_pb2.SCOPE_ANY)])

    async def names(metadata: Metadata) -> list[tuple[str, str]]:
        reply = await recruitment.stub.ListCandidates(
            recruitment_pb2.ListCandidatesRequest(), metadata=metadata, timeout=10
        )
        assert [c.name for c in reply.candidates] == sorted(c.name for c in reply.candidates)
        return [(c.candidate_id, c.owner_id) for c in reply.candidates]

    own = await names(user(user_signer, org, alice))
    assert len(own) == 2
    assert {owner_id for _, owner_id in own} == {alice}
    assert await names(ai(broker_key, org, alice)) == own

    everyone = await names(user(user_signer, org, bob))
    assert set(own) < set(everyone)
    assert {owner_id for _, owner_id in everyone} == {"", alice, bob}
    assert len(everyone) == 7  # three unowned, two of alice's, two of bob's
    assert await names(user(user_signer, org, alice)) == own

    for metadata in (user(user_signer, org, carol), ai(broker_key, org, carol)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await names(metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await recruitment.stub.ListCandidates(
            recruitment_pb2.ListCandidatesRequest(org_id=str(uuid.uuid4())),
            metadata=user(user_signer, org, bob),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_i5_the_example_service_sends_offers_only_within_scope(
    authz: AuthzServer,
    recruitment: Recruitment,
    user_signer: AssertionSigner,
    broker_key: Ed25519PrivateKey,
) -> None:
    """SendOffer checks recruitment.offer.send on the candidate as the principal: alice (own)
    offers to her candidate (for an AI principal too, sent by alice), not to one she does not
    own; bad input and unknown candidates are refused and send nothing."""
    org, owner, alice = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await authz.seed_org(org, owner)
    await authz.grant(
        org,
        alice,
        "Own recruiter",
        [(LIST.name, authz_pb2.SCOPE_OWN), (OFFER.name, authz_pb2.SCOPE_OWN)],
    )
    everyone = await recruitment.stub.ListCandidates(
        recruitment_pb2.ListCandidatesRequest(), metadata=user(user_signer, org, owner), timeout=10
    )
    unowned = next(c.candidate_id for c in everyone.candidates if not c.owner_id)
    mine = await recruitment.stub.ListCandidates(
        recruitment_pb2.ListCandidatesRequest(), metadata=user(user_signer, org, alice), timeout=10
    )
    candidate = mine.candidates[0].candidate_id

    def offer(candidate_id: str, salary: int = 90000, currency: str = "EUR") -> object:
        return recruitment_pb2.SendOfferRequest(
            candidate_id=candidate_id, salary=salary, currency=currency
        )

    sent = await recruitment.stub.SendOffer(
        offer(candidate), metadata=ai(broker_key, org, alice), timeout=10
    )
    assert (sent.offer.candidate_id, sent.offer.salary, sent.offer.currency) == (
        candidate,
        90000,
        "EUR",
    )
    assert sent.offer.sent_by == alice
    for request, code in [
        (offer(unowned), grpc.StatusCode.PERMISSION_DENIED),
        (offer("cand-unknown"), grpc.StatusCode.NOT_FOUND),
        (offer(candidate, salary=0), grpc.StatusCode.INVALID_ARGUMENT),
        (offer(candidate, currency="euro"), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await recruitment.stub.SendOffer(
                request,  # type: ignore[arg-type]
                metadata=user(user_signer, org, alice),
                timeout=10,
            )
        assert refused.value.code() == code, refused.value.details()
    assert [o.offer_id for o in recruitment.offers.sent(org)] == [sent.offer.offer_id]
