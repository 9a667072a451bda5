"""Verifies merchant webhook deliveries with the reference Standard Webhooks library.

    verify-standard-webhooks.py DELIVERIES.json

DELIVERIES.json: [{"secret": "whsec_...", "headers": {"webhook-id", "webhook-timestamp",
"webhook-signature"}, "body": "..."}]. Prints one line a delivery; exits 1 when any is refused.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main(path):
    with open(path) as f:
        deliveries = json.load(f)
    refused = 0
    for delivery in deliveries:
        try:
            Webhook(delivery["secret"]).verify(delivery["body"], delivery["headers"])
            print("verified", delivery["headers"]["webhook-id"])
        except WebhookVerificationError as error:
            refused += 1
            print("refused", delivery["headers"].get("webhook-id"), error)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
