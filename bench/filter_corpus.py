"""A seeded corpus for the filter quality report: values of every type in varied sentences.

Each case is (group, type, text, value): `value` is the PII the text holds
(None for hard negatives and clean prose). Groups:
- ordinary:  Faker values of every type across locales, as people write them;
- new:       formats and token kinds the filter learned later (international
             and national phones with extensions, every secret kind);
- disguised: ordinary values with zero-width characters inside, fullwidth
             digits and letters, NBSP/thin-space separators, fullwidth "＠"/"．";
- negative:  look-alikes that must stay (UUIDs, git SHAs, versions, ISO times,
             coordinates, tracking and order numbers, invalid IPs, non-Luhn
             16-digit numbers, invalid SSNs) and clean prose.
"""
from __future__ import annotations

import random
import string

from faker import Faker

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "ja_JP", "pt_BR", "en_AU")
IBAN_COUNTRIES = ("DE", "GB", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "PL", "PT", "IE", "SE", "NO", "DK", "FI")

TEMPLATES = (
    "{}", "Contact: {}", "You can reach them at {} during office hours.", "The value is {}.",
    "({})", "- {}\n", "Details: name=Alex, value={}, status=ok", "«{}»", "Here it is: {}; thanks!",
    "Per our records the entry reads {} as of today.", "{} is what the form said",
    "Bitte verwenden Sie {} für Rückfragen.", "Merci d'utiliser {} pour toute question.",
    "He wrote '{}' on the back of the card.", "Lookup result:\n  field: {}\n  checked: yes",
)
NEGATIVE_TEMPLATES = (
    "{}", "See {} for details.", "Build {} passed all checks.", "The reference is {}.",
    "Value: {}", "({})", "Logged at {} without errors.",
)
_B62 = string.ascii_letters + string.digits


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit to a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secret(rng: random.Random, kind: str) -> str:
    # every token is assembled at run time; none is a real credential
    if kind == "github":
        return "gh" + rng.choice("pousr") + "_" + _rand(rng, _B62, 36)
    if kind == "github_pat":
        return "github_pat_" + _rand(rng, _B62, 22) + "_" + _rand(rng, _B62, 59)
    if kind == "slack":
        return "xox" + rng.choice("baprs") + "-" + _rand(rng, string.digits, 12) + "-" \
            + _rand(rng, string.digits, 13) + "-" + _rand(rng, _B62, 24)
    if kind == "stripe":
        return rng.choice(("sk", "rk")) + "_" + rng.choice(("live", "test")) + "_" + _rand(rng, _B62, rng.choice((24, 99)))
    if kind == "google":
        return "AIza" + _rand(rng, _B62 + "-_", 35)
    if kind == "gitlab":
        return "glpat-" + _rand(rng, _B62 + "-_", 20)
    if kind == "anthropic":
        return "sk-ant-api03-" + _rand(rng, _B62 + "-_", 93) + "AA"
    if kind == "aws":
        return rng.choice(("AKIA", "ASIA")) + _rand(rng, string.ascii_uppercase + string.digits, 16)
    if kind == "openai":
        return "sk-" + rng.choice(("", "proj-")) + _rand(rng, _B62, 20) + str(rng.randint(0, 9)) + _rand(rng, _B62, 27)
    if kind == "bearer":
        return rng.choice(("Bearer ", "bearer ", "BEARER ")) + _rand(rng, _B62, 30) + str(rng.randint(0, 9))
    if kind == "jwt":
        return "eyJ" + _rand(rng, _B62, 20) + ".eyJ" + _rand(rng, _B62, 30) + "." + _rand(rng, _B62 + "-_", 43)
    if kind == "pem":
        label = rng.choice(("RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "))
        begin = f"-----BEGIN {label}PRIVATE KEY-----"
        if rng.random() < 0.3:
            begin = begin.lower()
        body = "\n".join(_rand(rng, _B62 + "+/", 64) for _ in range(3))
        return f"{begin}\n{body}\n{begin.replace('BEGIN', 'END').replace('begin', 'end')}"
    raise ValueError(kind)


SECRET_KINDS = ("github", "github_pat", "slack", "stripe", "google", "gitlab", "anthropic", "aws", "openai",
                "bearer", "jwt", "pem")


def _iban(rng: random.Random, fake: Faker) -> str:
    iban = fake.iban() if rng.random() < 0.5 else Faker("en_US").iban()
    return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def _card(rng: random.Random, fake: Faker) -> str:
    number = fake.credit_card_number()
    if rng.random() < 0.4 and len(number) == 16:
        sep = rng.choice((" ", "-"))
        number = sep.join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def _phone_intl(rng: random.Random) -> str:
    """International and national formats of several countries, some with extensions."""
    d = lambda n: _rand(rng, string.digits, n)  # noqa: E731
    nz = lambda: str(rng.randint(2, 9))  # noqa: E731
    forms = [
        f"+33 {rng.randint(1, 9)} {d(2)} {d(2)} {d(2)} {d(2)}",
        f"0{rng.randint(1, 5)} {d(2)} {d(2)} {d(2)} {d(2)}",
        f"+49 {nz()}{d(1)} {d(7)}", f"0{nz()}{d(3)} {d(5)}", f"+49 (0){nz()}{d(2)} {d(6)}",
        f"+44 20 {nz()}{d(3)} {d(4)}", f"07{d(3)} {d(6)}", f"+44 (0)161 {nz()}{d(2)} {d(4)}",
        f"+34 {rng.choice('69')}{d(2)} {d(3)} {d(3)}", f"+39 3{d(2)} {d(7)}", f"+31 6 {d(8)}",
        f"+91 {rng.choice('6789')}{d(4)} {d(5)}", f"+81 3-{d(4)}-{d(4)}", f"090-{d(4)}-{d(4)}",
        f"+55 11 9{d(4)}-{d(4)}", f"+61 4{d(2)} {d(3)} {d(3)}", f"(0{rng.choice('2378')}) {d(4)} {d(4)}",
        f"({nz()}{d(2)}) {nz()}{d(2)}-{d(4)}", f"{nz()}{d(2)}.{nz()}{d(2)}.{d(4)}",
        f"+1 {nz()}{d(2)} {nz()}{d(2)} {d(4)}", f"1-{nz()}{d(2)}-{nz()}{d(2)}-{d(4)}",
    ]
    number = rng.choice(forms)
    if rng.random() < 0.35:
        number += rng.choice((" x", "x", " ext. ", " ext ", " extension ", " #")) + d(rng.randint(2, 5))
    return number


_ZW = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_SPACES = ("\u00a0", "\u2009", "\u202f", "\u2007", "\u3000")


def disguise(rng: random.Random, value: str) -> str:
    """The value with one kind of disguise that does not change how it reads."""
    style = rng.choice(("zw", "fullwidth", "spaces", "fullwidth_at", "mixed"))
    if style == "fullwidth" or style == "mixed":
        value = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() or (c.isalpha() and c.isascii() and rng.random() < 0.3)
                        else c for c in value)
    if style == "spaces" or style == "mixed":
        value = value.replace(" ", rng.choice(_SPACES)).replace("-", rng.choice(("\u2010", "\u2013", "\u2212", "-")))
    if style == "fullwidth_at" or (style == "mixed" and "@" in value):
        value = value.replace("@", "＠").replace(".", "．")
    if style == "zw" or style == "mixed":
        cut = rng.randint(1, max(1, len(value) - 1))
        value = value[:cut] + rng.choice(_ZW) + value[cut:]
    return value


def _negatives(rng: random.Random, fake: Faker):
    d = lambda n: _rand(rng, string.digits, n)  # noqa: E731
    non_luhn = luhn_complete(d(15))
    non_luhn = non_luhn[:-1] + str((int(non_luhn[-1]) + rng.randint(1, 9)) % 10)
    yield "uuid", fake.uuid4()
    yield "git_sha", fake.sha1() if rng.random() < 0.5 else fake.sha1()[:rng.choice((7, 8, 12))]
    yield "semver", f"{rng.randint(0, 30)}.{rng.randint(0, 40)}.{rng.randint(0, 200)}" + rng.choice(("", "-rc.1", "+build.7"))
    yield "iso_time", fake.iso8601() + rng.choice(("", "Z", "+02:00"))
    yield "date", fake.date(pattern=rng.choice(("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y")))
    yield "coordinates", f"{fake.latitude()}, {fake.longitude()}"
    yield "tracking", rng.choice((f"1Z{_rand(rng, string.ascii_uppercase + string.digits, 16)}",
                                  f"94{d(20)}", f"{d(4)} {d(4)} {d(4)}", f"JD{d(18)}", f"{d(12)}"))
    yield "invalid_ip", rng.choice((f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
                                    f"{rng.randint(1, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(256, 999)}",
                                    f"{rng.randint(1, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"))
    yield "non_luhn", rng.choice((non_luhn, " ".join(non_luhn[i:i + 4] for i in range(0, 16, 4))))
    yield "order_number", rng.choice((f"#{d(rng.randint(6, 10))}", f"ORD-{d(8)}", f"{d(3)}-{d(7)}-{d(7)}",
                                      f"order {d(rng.randint(6, 9))}", f"PO {d(4)}-{d(5)}"))
    yield "invalid_ssn", rng.choice((f"000-{d(2)}-{d(4)}", f"666-{d(2)}-{d(4)}", f"9{d(2)}-{d(2)}-{d(4)}"))
    yield "amount", rng.choice((f"${rng.randint(1, 99)},{d(3)}.{d(2)}", f"{rng.randint(1, 999)}.{d(2)} EUR",
                                f"{rng.randint(1000, 99999)} units"))
    yield "prose", fake.sentence(nb_words=rng.randint(6, 16))


def build(seed: int = 12, per_locale: int = 40) -> list[tuple[str, str, str, str | None]]:
    """All cases, deterministic for a seed."""
    rng = random.Random(seed)
    cases = []
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(2**32))
        for _ in range(per_locale):
            values = {
                "email": fake.email(), "phone": fake.phone_number(), "card": _card(rng, fake),
                "ssn": Faker("en_US").ssn() if locale == "en_US" else None, "iban": _iban(rng, fake),
                "ip": fake.ipv4() if rng.random() < 0.6 else fake.ipv6(),
            }
            for kind, value in values.items():
                if value is None:
                    continue
                text = rng.choice(TEMPLATES).format(value)
                cases.append(("ordinary", kind, text, value))
                cases.append(("disguised", kind, rng.choice(TEMPLATES).format(disguise(rng, value)), value))
            for kind, value in _negatives(rng, fake):
                cases.append(("negative", kind, rng.choice(NEGATIVE_TEMPLATES).format(value), None))
            cases.append(("new", "phone", rng.choice(TEMPLATES).format(v := _phone_intl(rng)), v))
            kind = rng.choice(SECRET_KINDS)
            cases.append(("new", "secret:" + kind, rng.choice(TEMPLATES).format(v := _secret(rng, kind)), v))
    return cases
