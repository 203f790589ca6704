"""E-mail over SMTP (smtplib): one connection per worker thread, kept open between messages.

`Message-ID` is derived from the outbox key, so a resend after a crash carries the same id and
mail clients thread it as the same message; SMTP itself does not de-duplicate (at-least-once).
"""

from __future__ import annotations

import smtplib
import socket
import threading
from email.message import EmailMessage
from email.utils import formatdate

from billing_core.db.operations_models import NotificationChannel
from billing_core.operations.outbox import ClaimedMessage
from channels.notify.policy import DeliveryPolicy
from channels.notify.senders import SendResult, idempotency_key


class SmtpEmailSender:
    channel = NotificationChannel.EMAIL.value
    idempotent = False

    def __init__(self, host: str, port: int, sender: str, policy: DeliveryPolicy, *, username: str = "",
                 password: str = "", starttls: bool = False, timeout: float = 10.0) -> None:
        self._host, self._port, self._from = host, port, sender
        self._username, self._password, self._starttls = username, password, starttls
        self._timeout = timeout
        self._policy = policy
        self._local = threading.local()

    def message(self, outbox: ClaimedMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._from
        mail["To"] = outbox.recipient or ""
        mail["Subject"] = self._policy.subject(outbox.kind)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{idempotency_key(outbox).replace(':', '.')}@powerdesk>"
        mail.set_content(outbox.body)
        return mail

    def _connection(self) -> smtplib.SMTP:
        connection = getattr(self._local, "smtp", None)
        if connection is None:
            connection = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            if self._starttls:
                connection.starttls()
            if self._username:
                connection.login(self._username, self._password)
            self._local.smtp = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if connection is not None:
            try:
                connection.close()
            except OSError:
                pass

    def send(self, message: ClaimedMessage) -> SendResult:
        if not message.recipient:
            return SendResult("failed", "no_email", "no e-mail address on file")
        mail = self.message(message)
        try:
            refused = self._connection().send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            return SendResult("retry" if 400 <= code < 500 else "failed", str(code), reason.decode(errors="replace"))
        except smtplib.SMTPResponseException as exc:
            self._drop()
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return SendResult("retry" if 400 <= exc.smtp_code < 500 else "failed", str(exc.smtp_code), text)
        except (TimeoutError, socket.timeout):
            self._drop()
            return SendResult("retry", "timeout", "the mail server did not answer in time")
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return SendResult("retry", "transport", f"{type(exc).__name__}: {exc}")
        if refused:
            code, reason = next(iter(refused.values()))
            return SendResult("failed", str(code), reason.decode(errors="replace"))
        return SendResult("sent", "250", "queued", provider_message_id=mail["Message-ID"])

    def close(self) -> None:
        self._drop()
