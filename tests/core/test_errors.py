"""One error tree: every error Kestrel raises subclasses KestrelError, and every exchange
failure (ccxt's own, the paper exchange's, Kestrel's) is sorted by its class into the decision
the order path and the task retries act on."""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import ccxt
import pytest

import kestrel
from kestrel import errors
from kestrel.errors import KestrelError
from kestrel.exchange import paper_errors
from kestrel.exchange.errors import FailureKind, classify, is_transient, teach_ccxt_client

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kestrel", "cli", "flows", "tasks", "blocks")
BUILTIN_EXCEPTIONS = {
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), BaseException)
}


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def test_no_public_exception_starts_its_own_tree() -> None:
    """A class that derives straight from a builtin exception bypasses KestrelError.
    Private control-flow signals (`_Stop`) never leave their module and are exempt."""
    strays = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                    continue
                if node.name == "KestrelError":  # the root itself
                    continue
                if {_base_name(base) for base in node.bases} & BUILTIN_EXCEPTIONS:
                    strays.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert strays == []


def test_every_exception_class_of_the_domain_is_a_kestrel_error() -> None:
    strays = []
    for module_info in pkgutil.walk_packages(kestrel.__path__, "kestrel."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and not issubclass(value, KestrelError)
            ):
                strays.append(f"{module.__name__}.{name}")
    assert strays == []


def test_the_tree_module_exports_what_it_draws() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert set(errors.__all__) == defined
    doc = errors.__doc__ or ""
    assert [name for name in sorted(defined) if name not in doc] == []


CCXT_FAMILIES = [
    (ccxt.NetworkError("connection reset"), FailureKind.TRANSIENT),
    (ccxt.RequestTimeout("timed out"), FailureKind.TRANSIENT),
    (ccxt.RateLimitExceeded("429"), FailureKind.TRANSIENT),
    (ccxt.DDoSProtection("418"), FailureKind.TRANSIENT),
    (ccxt.ExchangeNotAvailable("503"), FailureKind.TRANSIENT),
    (ccxt.OnMaintenance("maintenance"), FailureKind.TRANSIENT),
    (ccxt.InvalidNonce("recvWindow"), FailureKind.TRANSIENT),
    (ccxt.InsufficientFunds("-2010 balance"), FailureKind.REJECTED),
    (ccxt.InvalidOrder("-1013 filter failure"), FailureKind.REJECTED),
    (ccxt.OrderImmediatelyFillable("would take"), FailureKind.REJECTED),
    (ccxt.BadSymbol("-1121"), FailureKind.REJECTED),
    (ccxt.BadRequest("-1102"), FailureKind.REJECTED),
    (ccxt.AuthenticationError("-2014"), FailureKind.REJECTED),
    (ccxt.PermissionDenied("not allowed"), FailureKind.REJECTED),
    (ccxt.AccountSuspended("suspended"), FailureKind.REJECTED),
    (ccxt.NotSupported("no such call"), FailureKind.REJECTED),
    (ccxt.OrderNotFound("-2013"), FailureKind.NOT_FOUND),
    (ccxt.DuplicateOrderId("reused id"), FailureKind.DUPLICATE),
    (ccxt.BadResponse("unparsable"), FailureKind.UNKNOWN),
    (ccxt.ExchangeError("-1001 internal"), FailureKind.UNKNOWN),
    (ccxt.OperationRejected("no"), FailureKind.UNKNOWN),
]


@pytest.mark.parametrize(("error", "kind"), CCXT_FAMILIES, ids=lambda v: type(v).__name__)
def test_a_ccxt_error_is_sorted_by_its_family(error: BaseException, kind: FailureKind) -> None:
    assert classify(error) is kind
    assert is_transient(error) is (kind is FailureKind.TRANSIENT)


def test_a_message_does_not_make_a_class() -> None:
    """Only the class counts: a message that reads like a duplicate is still a refused order."""
    assert classify(ccxt.InvalidOrder('binance {"msg":"Duplicate order sent."}')) is (
        FailureKind.REJECTED
    )
    assert classify(ValueError("RequestTimeout")) is FailureKind.UNKNOWN


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (errors.TransientExchangeError("feed down"), FailureKind.TRANSIENT),
        (errors.OrderOutcomeUnknown("not visible yet"), FailureKind.TRANSIENT),
        (errors.InsufficientFunds("paper"), FailureKind.REJECTED),
        (errors.DuplicateOrderOnExchange("again"), FailureKind.DUPLICATE),
        (errors.OrderNotFoundOnExchange("gone"), FailureKind.NOT_FOUND),
        (errors.InvalidExchangePayload("filled=-1"), FailureKind.UNKNOWN),
        (TimeoutError("socket"), FailureKind.TRANSIENT),
        (ConnectionResetError("socket"), FailureKind.TRANSIENT),
    ],
    ids=lambda v: type(v).__name__,
)
def test_kestrel_and_socket_errors_are_sorted_by_class(
    error: BaseException, kind: FailureKind
) -> None:
    assert classify(error) is kind


@pytest.mark.parametrize(
    ("paper", "ccxt_class"),
    [
        (paper_errors.PaperOrderRejected, ccxt.InvalidOrder),
        (paper_errors.PaperBadSymbol, ccxt.BadSymbol),
        (paper_errors.PaperInsufficientFunds, ccxt.InsufficientFunds),
        (paper_errors.PaperDuplicateOrder, ccxt.DuplicateOrderId),
        (paper_errors.PaperOrderNotFound, ccxt.OrderNotFound),
    ],
)
def test_the_paper_exchange_raises_what_binance_would(
    paper: type[Exception], ccxt_class: type[Exception]
) -> None:
    error = paper("refused")
    assert isinstance(error, ccxt_class) and isinstance(error, KestrelError)
    assert classify(error) is classify(ccxt_class("refused"))


def test_binance_duplicate_message_is_taught_as_its_class() -> None:
    """Binance's -2010 "Duplicate order sent." is an InvalidOrder to ccxt; a taught client
    raises DuplicateOrderId, and an untaught one still raises a refused order."""
    body = json.dumps({"code": -2010, "msg": "Duplicate order sent."})
    url = "https://api.binance.com/api/v3/order"

    def raised(client: ccxt.Exchange) -> BaseException:
        with pytest.raises(ccxt.InvalidOrder) as caught:
            client.handle_errors(
                400, "Bad Request", url, "POST", {}, body, json.loads(body), {}, ""
            )
        return caught.value

    taught, plain = ccxt.binance(), ccxt.binance()
    teach_ccxt_client(taught)
    assert classify(raised(taught)) is FailureKind.DUPLICATE
    assert classify(raised(plain)) is FailureKind.REJECTED


def test_task_retries_follow_the_classification() -> None:
    from prefect.states import Failed

    from tasks.retry import transient_only

    for error, kind in CCXT_FAMILIES:
        retried = transient_only(None, None, Failed(data=error))  # type: ignore[arg-type]
        assert retried is (kind is FailureKind.TRANSIENT), error


def test_classifying_never_imports_ccxt() -> None:
    code = (
        "import sys\n"
        "from kestrel.exchange.errors import FailureKind, classify\n"
        "assert classify(ValueError('x')) is FailureKind.UNKNOWN\n"
        "assert 'ccxt' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
