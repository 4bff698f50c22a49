"""A small training corpus for fast refits in tests, written from the taxonomy definitions
(extractors/taxonomy.json) the way CSMs and customers write: never from an evaluation document.

Five types get positives built from a few templates and names; the negatives are pleasantries, scheduling,
signatures and vendor-side statements. A refit on it takes seconds instead of minutes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

NAMES = ["Priya", "Marcus", "Elena", "Tom", "Aisha", "Jonas", "Carla", "Ben"]
COMPETITORS = ["Zendesk", "Gainsight", "Totango", "ChurnZero", "Freshdesk"]
TEAMS = ["finance", "the EMEA team", "our support desk", "marketing", "the Berlin office"]

POSITIVE_TEMPLATES: dict[str, list[str]] = {
    "churn_intent": [
        "We have decided not to renew the contract when it ends in {month}.",
        "{name} told me they plan to cancel the subscription at the end of the term.",
        "Please treat this as our notice that we will not be renewing.",
        "We are going to reduce our seats from {n} to {m} at renewal.",
        "leadership wants to close the account and move off the platform by {month}",
    ],
    "champion_departed": [
        "{name} has left the company and her last day was Friday.",
        "Quick heads up: {name} is leaving us at the end of the month.",
        "{name} moved to another role and is no longer on the account.",
        "our main contact {name} resigned last week",
        "Since {name} left, nobody on their side owns the rollout.",
    ],
    "competitor_mention": [
        "They are evaluating {comp} as an alternative for next year.",
        "{name} mentioned that {comp} offered them a pilot for free.",
        "We are running a side by side trial with {comp} this quarter.",
        "procurement asked us to compare our price with {comp}",
        "Honestly {comp} looks like a better fit for {team}.",
    ],
    "expansion_interest": [
        "Could you send a quote for {n} more licences for {team}?",
        "We would like to roll the product out to {team} next quarter.",
        "{name} asked about upgrading to the enterprise plan.",
        "we want to add another {n} seats before the summer",
        "Is there a bundle price if {team} joins as well?",
    ],
    "meeting_cancelled": [
        "{name} cancelled our quarterly business review again.",
        "I have to postpone Thursday's call, something came up.",
        "They declined the invite for the roadmap session.",
        "the workshop with {team} is called off for now",
        "Sorry, we need to push the kickoff meeting to an unknown date.",
    ],
}

NEGATIVES = [
    "Thanks for the quick reply, have a great weekend.",
    "Best regards, {name}",
    "The meeting moved to Tuesday at 10am in the usual room.",
    "Attached is the agenda for next week.",
    "Let me know if you have any questions.",
    "Our release notes for version {n} are on the website.",
    "This email and any attachments are confidential and intended solely for the addressee.",
    "Hi {name}, hope you are well.",
    "I will be out of office until {month}.",
    "Can you share the dial-in details for the call?",
    "We shipped the new reporting dashboard to all customers yesterday.",
    "Lunch is booked for noon on Wednesday.",
    "Please find the signed purchase order attached.",
    "{name} from {team} will join the call to take notes.",
    "The training session recording is in the shared folder.",
    "No concerns about the renewal from our side.",
    "Our old champion's replacement is great to work with.",
    "Looking forward to seeing you at the conference.",
    "Just confirming I received the documents.",
    "The invoice for {month} was paid on time, thank you.",
]
MONTHS = ["March", "June", "September", "December"]


def _fill(template: str, i: int) -> str:
    return template.format(name=NAMES[i % len(NAMES)], comp=COMPETITORS[i % len(COMPETITORS)],
                           team=TEAMS[i % len(TEAMS)], month=MONTHS[i % len(MONTHS)], n=5 * (i % 7 + 2),
                           m=2 * (i % 5 + 1))


def write_small_corpus(directory: Path, variants: int = 4) -> Path:
    """Write corpus_small.jsonl (5 types x 5 templates x ``variants`` fillings, plus negatives) into
    ``directory``; returns the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    seen = set()
    for k in range(variants):
        for t, templates in POSITIVE_TEMPLATES.items():
            for j, tpl in enumerate(templates):
                text = _fill(tpl, k * 3 + j)
                if text.lower() not in seen:
                    seen.add(text.lower())
                    lines.append({"text": text, "labels": [t], "genre": "email"})
        for j, tpl in itertools.islice(enumerate(NEGATIVES), None):
            text = _fill(tpl, k * 5 + j)
            if text.lower() not in seen:
                seen.add(text.lower())
                lines.append({"text": text, "labels": [], "genre": "email"})
    with (directory / "corpus_small.jsonl").open("w", encoding="utf-8") as f:
        for rec in lines:
            f.write(json.dumps(rec) + "\n")
    return directory
