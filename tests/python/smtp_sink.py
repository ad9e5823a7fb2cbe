"""A real SMTP server for the notification tests: aiosmtpd on 127.0.0.1:<port>, writing each
message it receives to <out_dir>/<n>.json (n counts up from 1 in arrival order) with its
envelope, headers and every non-multipart part decoded by Python's email package, so the
tests assert on what a mail client would show rather than on transfer encodings.

Usage: python smtp_sink.py <port> <out_dir>. Prints "ready" once listening; runs until killed.
"""

import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in msg.walk():
            if part.get_content_maintype() == "multipart":
                continue
            parts[part.get_content_type()] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "message_id": str(msg["message-id"]),
            "content_type": msg.get_content_type(),
            "parts": parts,
        }
        with self.lock:
            self.count += 1
            path = os.path.join(self.out_dir, f"{self.count:05d}.json")
        # Written whole, then renamed: the test never reads half a message.
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def main():
    port = int(sys.argv[1])
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    controller = Controller(Sink(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
