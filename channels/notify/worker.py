"""The outbox worker: claim a batch, apply the delivery policy, send concurrently, record.

Several workers (processes or machines) may run at once: claims are leases in the database
(`billing_core.operations.outbox`), so none takes another's rows and a dead worker's rows come
back after the lease. Per batch:

1. opt-in kinds the customer never asked for are skipped (never sent);
2. SMS in quiet hours, and messages over the customer's daily cap, are deferred (the attempt is
   given back);
3. the rest are sent on a thread pool, the lease renewed while a slow provider keeps them;
4. outcomes are written in one transaction: sent (with the provider's id and answer), retry
   with exponential back-off, or failed (refused, or the retry limit reached). A WeChat message
   to a customer who unfollowed is failed with WeChat's answer and queued again as an SMS.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from billing_core.db.engine import session_scope, utc_now
from billing_core.db.operations_models import NotificationChannel
from billing_core.operations import outbox
from billing_core.operations.outbox import ClaimedMessage, Outcome
from channels.notify.policy import DeliveryPolicy, load_policy
from channels.notify.senders import Sender, SendResult

log = logging.getLogger("powerdesk.notify")


@dataclass
class BatchReport:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class OutboxWorker:
    """One worker process's loop (thread-safe senders are shared by the pool threads)."""

    def __init__(self, senders: Mapping[str, Sender], policy: DeliveryPolicy | None = None, *,
                 url: str | None = None, batch_size: int = 200, concurrency: int = 16,
                 poll_seconds: float = 1.0, lease_seconds: float | None = None, seed: int | None = None) -> None:
        self.senders = dict(senders)
        self.policy = policy or load_policy()
        self.url = url
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds or self.policy.lease_seconds
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="notify")
        self._stop = threading.Event()
        self._rng = random.Random(seed)
        self.totals: Counter[str] = Counter()
        self._thread: threading.Thread | None = None

    # -- one batch -------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> BatchReport:
        report = BatchReport()
        with session_scope(self.url) as session:
            claimed = outbox.claim(session, self.batch_size, self.lease_seconds, channels=self.senders, now=now)
        report.claimed = len(claimed)
        if not claimed:
            return report
        now = now or utc_now()
        outcomes, to_send = self._apply_policy(claimed, now)
        results = self._send_all(to_send, claimed[0].claim_token)
        phones: dict[str, str] = {}
        if any(r.verdict == "fallback_sms" for r in results.values()):
            with session_scope(self.url) as session:
                phones = outbox.phones(session, {m.account_no for m in to_send})
        for message in to_send:
            outcomes.append(self._outcome(message, results[message.id], phones, utc_now()))
        with session_scope(self.url) as session:
            outbox.record(session, outcomes)
        report.outcomes.update(o.status for o in outcomes)
        self.totals.update(report.outcomes)
        return report

    def _apply_policy(self, claimed: list[ClaimedMessage], now: datetime) -> tuple[list[Outcome], list[ClaimedMessage]]:
        outcomes: list[Outcome] = []
        opt_in_pairs = {(m.account_no, m.kind) for m in claimed if self.policy.needs_opt_in(m.kind)}
        with session_scope(self.url) as session:
            consented = outbox.opted_in(session, opt_in_pairs)
            already = outbox.sent_since(session, {m.account_no for m in claimed}, self.policy.day_start(now))
        to_send = []
        for message in claimed:
            if (message.account_no, message.kind) in opt_in_pairs and (message.account_no, message.kind) not in consented:
                outcomes.append(Outcome(message.id, message.claim_token, "skipped", error="not_opted_in"))
                continue
            quiet_until = self.policy.in_quiet_hours(message.channel, now)
            if quiet_until is not None:
                outcomes.append(Outcome(message.id, message.claim_token, "deferred", error="quiet_hours",
                                        next_attempt_at=quiet_until))
                continue
            if already.get(message.account_no, 0) >= self.policy.daily_cap:
                outcomes.append(Outcome(message.id, message.claim_token, "deferred", error="daily_cap",
                                        next_attempt_at=self.policy.next_day(now)))
                continue
            already[message.account_no] = already.get(message.account_no, 0) + 1
            to_send.append(message)
        return outcomes, to_send

    def _send_all(self, messages: list[ClaimedMessage], token: str) -> dict[int, SendResult]:
        futures: dict[Future[SendResult], ClaimedMessage] = {
            self._pool.submit(self._send_one, m): m for m in messages}
        pending = set(futures)
        renew_every = self.lease_seconds / 3
        while pending:
            _done, pending = wait(pending, timeout=renew_every, return_when=ALL_COMPLETED)
            if pending:
                with session_scope(self.url) as session:
                    outbox.extend(session, token, self.lease_seconds)
        return {futures[f].id: f.result() for f in futures}

    def _send_one(self, message: ClaimedMessage) -> SendResult:
        try:
            return self.senders[message.channel].send(message)
        except Exception as exc:  # a sender bug must not lose the message: retry it later
            log.exception("sender %s raised on outbox row %s", message.channel, message.id)
            return SendResult("retry", "exception", f"{type(exc).__name__}: {exc}")

    def _outcome(self, message: ClaimedMessage, result: SendResult, phones: Mapping[str, str],
                 now: datetime) -> Outcome:
        base = {"message_id": message.id, "claim_token": message.claim_token,
                "provider_response": result.response()}
        if result.verdict == "sent":
            return Outcome(status="sent", provider_message_id=result.provider_message_id, **base)
        if result.verdict == "fallback_sms":
            phone = phones.get(message.account_no)
            if phone and NotificationChannel.SMS.value in self.senders:
                return Outcome(status="failed", error=f"wechat {result.code}: queued as SMS",
                               fallback=outbox.fallback_sms_row(message, phone), **base)
            return Outcome(status="failed", error=f"wechat {result.code}: no SMS fallback (no phone or gateway)", **base)
        error = f"{result.code}: {result.message}"
        if result.verdict == "failed":
            return Outcome(status="failed", error=error, **base)
        if message.attempts >= self.policy.max_attempts:
            return Outcome(status="failed", error=f"gave up after {message.attempts} attempts; last {error}", **base)
        delay = self.policy.backoff(message.attempts, self._rng)
        return Outcome(status="retry", error=error,
                       next_attempt_at=datetime.fromtimestamp(now.timestamp() + delay, tz=now.tzinfo), **base)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, drain: bool = False) -> Counter[str]:
        """Work until stopped (SIGTERM / `stop()`); `drain`: stop once nothing is due and no other
        worker holds a lease, both seen at one instant (a dead worker's rows are taken over when
        its lease ends)."""
        while not self._stop.is_set():
            report = self.run_once()
            if report.claimed:
                log.info("outbox batch", extra={"claimed": report.claimed, **dict(report.outcomes)})
                continue
            if drain:
                with session_scope(self.url) as session:
                    if not outbox.outstanding(session, self.senders):
                        break
            self._stop.wait(self.poll_seconds)
        return self.totals

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self._thread is not None:  # let the loop record the batch in hand first
            self._stop.set()
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        for sender in self.senders.values():
            sender.close()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (inside `powerdesk serve --notify`)."""
        self._thread = threading.Thread(target=self.run, name="outbox-worker", daemon=True)
        self._thread.start()
        return self._thread


def senders_from_env(policy: DeliveryPolicy, timeout: float | None = None) -> dict[str, Sender]:
    """The senders whose provider is configured (a channel without one stays queued)."""
    env = os.environ
    timeout = timeout or float(env.get("POWERDESK_NOTIFY_TIMEOUT", "5"))
    senders: dict[str, Sender] = {}
    if env.get("POWERDESK_WECHAT_APP_SECRET"):
        from channels.notify.wechat_template import WeChatTemplateSender

        senders[NotificationChannel.WECHAT_TEMPLATE.value] = WeChatTemplateSender(
            env.get("POWERDESK_WECHAT_APP_ID", ""), env["POWERDESK_WECHAT_APP_SECRET"],
            env.get("POWERDESK_WECHAT_API_BASE", "https://api.weixin.qq.com"), policy, timeout=timeout,
            stable_token=env.get("POWERDESK_WECHAT_STABLE_TOKEN", "0") == "1")
    if env.get("POWERDESK_SMS_ACCESS_KEY_SECRET"):
        from channels.notify.sms_aliyun import AliyunSmsSender

        senders[NotificationChannel.SMS.value] = AliyunSmsSender(
            env.get("POWERDESK_SMS_ACCESS_KEY_ID", ""), env["POWERDESK_SMS_ACCESS_KEY_SECRET"],
            env.get("POWERDESK_SMS_SIGN_NAME", ""), env.get("POWERDESK_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com"),
            policy, region=env.get("POWERDESK_SMS_REGION", "cn-hangzhou"), timeout=timeout)
    if env.get("POWERDESK_SMTP_HOST"):
        from channels.notify.email_smtp import SmtpEmailSender

        senders[NotificationChannel.EMAIL.value] = SmtpEmailSender(
            env["POWERDESK_SMTP_HOST"], int(env.get("POWERDESK_SMTP_PORT", "25")),
            env.get("POWERDESK_SMTP_FROM", "noreply@powerdesk.local"), policy,
            username=env.get("POWERDESK_SMTP_USERNAME", ""), password=env.get("POWERDESK_SMTP_PASSWORD", ""),
            starttls=env.get("POWERDESK_SMTP_STARTTLS", "0") == "1", timeout=timeout)
    return senders


def worker_from_env(**options: object) -> OutboxWorker:
    policy = load_policy(os.environ.get("POWERDESK_NOTIFY_POLICY") or None)
    return OutboxWorker(senders_from_env(policy), policy, **options)  # type: ignore[arg-type]

