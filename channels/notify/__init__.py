"""Delivering the outbox (issue 16): senders for WeChat template messages, an SMS gateway and
e-mail, the delivery policy (quiet hours, daily cap, opt-in kinds) and the worker that runs them."""
