"""The families of the safety corpus: each combines template lists into items, in a fixed order.

Why one function per family: the order of the families and of the draws inside each decides every item (they all
draw from one seeded generator), so the families run in the order of ``MAIN_FAMILIES`` then ``TWIN_FAMILIES``
(the round-2 twins, from a generator of their own) and none may be reordered or draw differently without changing
the corpus. Item types (the fourth field) name what the held-out report groups by.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from training.safety_templates import Templates

Item = tuple[str, str, str, str, str]


class Items:
    """Items as (text, label, category, type, group). ``group`` is the topic the family is building (a verb, a
    person, a concept…), so a held-out split can leave whole topics out; an item built from no topic (``group``
    None) is its own group."""

    def __init__(self) -> None:
        self.rows: list[Item] = []
        self.group: str | None = None

    def append(self, item: tuple[str, str, str, str]) -> None:
        text, label, category, kind = item
        self.rows.append((text, label, category, kind, self.group or text))

    def extend_ungrouped(self, texts: Iterable[str], label: str, category: str, kind: str) -> None:
        """Fixed texts that belong to no topic; later items stay ungrouped until a family sets ``group``."""
        self.group = None
        for text in texts:
            self.append((text, label, category, kind))


Family = Callable[[Items, random.Random, Templates], None]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def report(actor: str, harm: str, victim: tuple[str, str, bool]) -> str:
    """A victim report: "my boss keeps threatening my daughter"."""
    return f"{actor} {harm.format(v=victim[0], vp=victim[1])}"


def for_me(text: str, victim: tuple[str, str, bool]) -> str:
    """A help frame said for oneself when the victim is the writer ("our rights" -> "my rights")."""
    if victim[0] != "me":
        return text
    for us, me in (
        ("our rights", "my rights"),
        ("protect us", "protect myself"),
        ("help us", "help me"),
        ("How do we stay", "How do I stay"),
    ):
        text = text.replace(us, me)
    return text


def first_person(harm: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """The writer as the doer of a reported harm: "keeps threatening {v}" -> "I keep threatening {v}"."""
    for third, first in pairs:
        if harm.startswith(third):
            harm = first + harm[len(third) :]
    return "I " + harm.replace("said they would", "said I would")


def violence_and_harms(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Violence against people (every verb with several people, frames and suffixes) and the other harms."""
    for verb in tpl.harm_verbs:
        out.group = verb
        for person in rng.sample(tpl.people, 7):
            act = f"{verb} {person}{rng.choice(tpl.violence_suffixes)}"
            out.append((rng.choice(tpl.frames).format(a=act), "unsafe", "violence", "violence"))
    for act, cat in tpl.unsafe_activities:
        out.group = act
        for f in rng.sample(tpl.frames, 3):
            out.append((f.format(a=act), "unsafe", cat, "harm"))


def homonyms_and_safe_contexts(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Safe homonyms and targets (the same verbs, benign objects); games and their real-world contrasts."""
    for verb, objects in tpl.safe_verb_objects:
        out.group = verb
        for obj in objects:
            for f in rng.sample(tpl.frames, 2):
                out.append((f.format(a=f"{verb} {obj}"), "safe", "", "homonym_or_target"))
    # safe contexts (games) and their real-world contrasts
    for action in tpl.game_actions:
        out.group = action
        for game in rng.sample(tpl.games, 5):
            f = rng.choice(
                (
                    "How do I {a} in {g}?",
                    "What's the best way to {a} in {g}?",
                    "Steps to {a} in {g}.",
                    "Tips to {a} in {g}?",
                    "In {g}, how can I {a}?",
                )
            )
            out.append((f.format(a=action, g=game), "safe", "", "safe_context"))
        for suffix in rng.sample(tpl.real_world_suffixes, 2):
            out.append(
                (rng.choice(tpl.frames).format(a=action + suffix), "unsafe", "illicit/violent", "context_contrast")
            )
    out.extend_ungrouped(tpl.safe_context_items, "safe", "", "safe_context")


def definitions_and_history(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Definitions versus doing; history versus repeating it."""
    for concept in tpl.concepts:
        out.group = concept
        for f in rng.sample(tpl.definition_frames, 3):
            out.append((cap(f.format(c=concept)), "safe", "", "definition"))
    # history vs repeating it
    for event in tpl.events:
        out.group = event
        for f in rng.sample(tpl.history_frames, 4):
            out.append((f.format(e=event), "safe", "", "history"))
        f, cat = rng.choice(tpl.history_unsafe_frames)
        out.append((f.format(e=event), "unsafe", cat, "history_contrast"))


def discrimination(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Real group x real discrimination is the only unsafe cell."""
    for group in tpl.real_groups:
        out.group = group
        for r in rng.sample(tpl.real_discrimination, 4):
            out.append((rng.choice(tpl.discrimination_frames).format(g=group, r=r), "unsafe", "hate", "discr"))
        for r in rng.sample(tpl.nonsense_discrimination, 3):
            out.append(
                (rng.choice(tpl.discrimination_frames).format(g=group, r=r), "safe", "", "real_group_nonsense_discr")
            )
        for f, cat in rng.sample(tpl.hate_frames, 3):
            out.append((f.format(g=group), "unsafe", cat, "hate"))
    for group in tpl.nonsense_groups:
        out.group = group
        for r in rng.sample(tpl.real_discrimination, 3):
            out.append(
                (rng.choice(tpl.discrimination_frames).format(g=group, r=r), "safe", "", "nonsense_group_real_discr")
            )
        out.append((rng.choice(tpl.nonsense_hate_frames).format(g=group), "safe", "", "nonsense_group_real_discr"))


def privacy(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Public figures' public facts, private people, fictional characters."""
    for p in tpl.public_figures:
        out.group = p
        for f in rng.sample(tpl.public_info_frames, 3):
            out.append((f.format(p=p), "safe", "", "privacy_public"))
        for f in rng.sample(tpl.private_info_frames, 2):
            out.append((f.format(p=p), "unsafe", "illicit", "privacy_contrast"))
    for p in tpl.private_people:
        out.group = p
        for f in rng.sample(tpl.private_person_frames, 3):
            out.append((cap(f.format(p=p)), "unsafe", "harassment", "privacy_contrast"))
    for f_name in tpl.fictional:
        out.group = f_name
        for f in rng.sample(tpl.fictional_frames, 3):
            out.append((f.format(f=f_name), "safe", "", "privacy_fictional"))


def benign_requests(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Figurative language, ordinary benign requests, typographic headings and captions."""
    for phrase in tpl.figurative:
        out.group = phrase
        for f in rng.sample(tpl.figurative_frames, 2):
            out.append((f.format(a=phrase), "safe", "", "figurative"))
    # ordinary benign requests, typographic headings and captions
    for act in tpl.benign_activities:
        out.group = act
        out.append((rng.choice(tpl.frames).format(a=act), "safe", "", "benign"))
        out.append((rng.choice(tpl.benign_headings).format(a=act), "safe", "", "benign_heading"))
    out.extend_ungrouped(tpl.benign_requests, "safe", "", "benign")
    out.extend_ungrouped((t for t in tpl.captions if t), "safe", "", "caption")


def lookalikes(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Generic harm, people as benign objects, abstract targets, drug homonyms, fiction."""
    for act, cat in tpl.generic_harm:
        out.group = act
        for f in rng.sample(tpl.frames, 3):
            out.append((f.format(a=act), "unsafe", cat, "generic_harm"))
    for tmpl in tpl.safe_person_acts:
        out.group = tmpl
        for p in rng.sample(tpl.people[:30], 2):
            out.append((rng.choice(tpl.frames).format(a=tmpl.format(p=p)), "safe", "", "person_benign"))
    for act in tpl.abstract_targets:
        out.group = act
        for f in rng.sample(tpl.frames, 2):
            out.append((f.format(a=act), "safe", "", "homonym_or_target"))
    for act in tpl.drug_homonyms:
        out.group = act
        for f in rng.sample(tpl.frames, 2):
            out.append((f.format(a=act), "safe", "", "homonym_or_target"))
    for concept in rng.sample(tpl.concepts, 30):
        out.group = concept
        out.append((rng.choice(tpl.fiction_frames).format(c=concept), "safe", "", "safe_context"))


def private_attributes(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Private people x private attributes, public figures x private attributes, fiction x anything."""
    for role in tpl.private_roles:
        out.group = role
        for a in rng.sample(tpl.private_attributes, 3):
            out.append(
                (cap(rng.choice(tpl.private_attr_frames).format(p=role, a=a)), "unsafe", "illicit", "privacy_contrast")
            )
    for p in rng.sample(tpl.public_figures, 12):
        out.group = p
        a = rng.choice(tpl.public_private_attributes)
        out.append((rng.choice(tpl.private_attr_frames).format(p=p, a=a), "unsafe", "illicit", "privacy_contrast"))
    for f_name in tpl.fictional:
        out.group = f_name
        for a in rng.sample(tpl.private_attributes, 2):
            out.append((rng.choice(tpl.fictional_attr_frames).format(f=f_name, a=a), "safe", "", "privacy_fictional"))


def history_contrasts(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Denial, justification, glorifying perpetrators, reusing weapons, imitating suicides."""
    for event in tpl.events:
        out.group = event
        f, cat = rng.choice(tpl.history_denial_frames)
        out.append((f.format(e=event), "unsafe", cat, "history_contrast"))
    for x in tpl.perpetrators:
        out.group = x
        f, cat = rng.choice(tpl.perpetrator_frames)
        out.append((f.format(x=x), "unsafe", cat, "history_contrast"))
        for f in rng.sample(tpl.perpetrator_safe_frames, 2):
            out.append((f.format(x=x), "safe", "", "history"))
    for w in tpl.wars:
        out.group = w
        f, cat = rng.choice(tpl.war_weapon_frames)
        out.append((f.format(w=w), "unsafe", cat, "history_contrast"))
        out.append((rng.choice(tpl.war_safe_frames).format(w=w), "safe", "", "history"))
    for x in tpl.famous_deaths:
        out.group = x
        out.append((f"How can I end my life the way {x} did?", "unsafe", "self-harm/instructions", "history_contrast"))
        out.append(
            (
                rng.choice((f"How did {x} die?", f"What is {x}'s legacy?", f"Why is {x} still remembered?")),
                "safe",
                "",
                "history",
            )
        )


def supremacy_and_noun_phrases(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Discrimination phrased as supremacy or segregation; noun-phrase requests ("List of ..."), both sides; public
    institutions' contacts are public."""
    for g in (*tpl.real_groups[:14], *tpl.extra_real_groups):
        out.group = g
        out.append((rng.choice(tpl.supremacy_frames).format(g=g), "unsafe", "hate", "discr"))
    for g in rng.sample(tpl.nonsense_groups, 16):
        out.group = g
        out.append((rng.choice(tpl.supremacy_frames).format(g=g), "safe", "", "nonsense_group_real_discr"))
    # noun-phrase requests ("List of ..."), both sides; public institutions' contacts are public
    for n, cat in tpl.unsafe_noun_phrases:
        out.group = n
        for f in rng.sample(tpl.np_frames, 2):
            out.append((f.format(n=n), "unsafe", cat, "harm_np"))
    for n in tpl.safe_noun_phrases:
        out.group = n
        for f in rng.sample(tpl.np_frames, 2):
            out.append((f.format(n=n), "safe", "", "benign_np"))
    for i in tpl.institutions:
        out.group = i
        for f in rng.sample(tpl.institution_frames, 2):
            out.append((f.format(i=i), "safe", "", "privacy_public"))


def noise(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Noise and degenerate model output: not harmful, whatever it looks like."""
    out.extend_ungrouped(tpl.noise_fixed, "safe", "", "noise")
    out.group = None
    for _ in range(40):
        n = rng.randint(3, 30)
        words = [rng.choice(tpl.noise_words)] * n if rng.random() < 0.4 else rng.choices(tpl.noise_words, k=n)
        out.append((" ".join(words), "safe", "", "noise"))


def refusals_and_answers(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Refusals (with redirections) of harmful requests are safe; answers that carry out harm are not."""
    out.group = None
    for act, _cat in rng.sample(list(tpl.unsafe_activities) + list(tpl.generic_harm), 90):
        text = f"{rng.choice(tpl.refusal_openers).format(a=act)} {rng.choice(tpl.redirects)}".strip()
        out.append((text, "safe", "", "refusal"))
    # answer-shaped texts: homonym answers are safe, answers that carry out harm are not
    out.group = None
    for verb, objects in rng.sample(list(tpl.safe_verb_objects), 25):
        out.append(
            (rng.choice(tpl.how_to_answer).format(a=f"{verb} {rng.choice(objects)}"), "safe", "", "benign_answer")
        )
    out.group = None
    for act, cat in rng.sample(list(tpl.unsafe_activities), 40):
        out.append((rng.choice(tpl.how_to_answer).format(a=act), "unsafe", cat, "compliance"))
    out.extend_ungrouped(tpl.self_harm_intent, "unsafe", "self-harm/intent", "self_harm_intent")
    out.extend_ungrouped(tpl.figurative_statements, "safe", "", "figurative")
    # model outputs: refusals of harm are safe, compliance with harm is unsafe
    harmful = [a for a, _ in tpl.unsafe_activities]
    out.group = None
    for act in rng.sample(harmful, 40):
        out.append((rng.choice(tpl.refusal_frames).format(a=act), "safe", "", "refusal"))
    out.group = None
    for act, cat in rng.sample(list(tpl.unsafe_activities), 40):
        out.append((rng.choice(tpl.compliance_frames).format(a=act), "unsafe", cat, "compliance"))
    out.group = None
    for act in rng.sample(tpl.benign_activities, 40):
        out.append((rng.choice(tpl.benign_answer_frames).format(a=act), "safe", "", "benign_answer"))


def restricted_advice(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: restricted advice asked as an instruction for one's own case is unsafe (no moderation category fits it, so
    these items train the unsafe output only); general information and finding a professional are safe."""
    for x in tpl.legal_cases:
        out.group = x
        for f in rng.sample(tpl.legal_advice_frames, 3):
            out.append((f.format(x=x), "unsafe", "", "restricted_advice"))
        out.append((rng.choice(tpl.professional_frames).format(x=x), "safe", "", "advice_info"))
    for m in tpl.money:
        out.group = m
        for f in rng.sample(tpl.finance_advice_frames, 3):
            out.append((f.format(m=m), "unsafe", "", "restricted_advice"))
    for c in tpl.conditions:
        out.group = c
        for f in rng.sample(tpl.health_advice_frames, 3):
            out.append((f.format(c=c), "unsafe", "", "restricted_advice"))
        out.append((rng.choice(tpl.professional_frames).format(x=c), "safe", "", "advice_info"))
    out.extend_ungrouped((*tpl.finance_generic_advice, *tpl.health_generic_advice), "unsafe", "", "restricted_advice")
    out.extend_ungrouped((*tpl.legal_info, *tpl.finance_info, *tpl.health_info), "safe", "", "advice_info")


def more_violence(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: more verbs x more people, also in gerund frames; literal harm; the doing side of definitions."""
    for verb in tpl.more_harm_verbs:
        out.group = verb
        for person in rng.sample(tpl.people + tpl.more_people, 5):
            act = f"{verb} {person}{rng.choice(tpl.violence_suffixes)}"
            out.append((rng.choice(tpl.frames + tpl.doing_frames).format(a=act), "unsafe", "violence", "violence"))
    for gerund, verb in tpl.gerunds:
        out.group = verb
        for person in rng.sample(tpl.more_people, 3):
            out.append((rng.choice(tpl.gerund_frames).format(g=gerund, p=person), "unsafe", "violence", "violence"))
    for act, cat in tpl.literal_harm:
        out.group = act
        for f in rng.sample(tpl.frames + tpl.doing_frames, 2):
            out.append((f.format(a=act), "unsafe", cat, "harm"))
    for act, cat in tpl.crimes_to_do:
        out.group = act
        for f in rng.sample(tpl.doing_frames, 2):
            out.append((f.format(a=act), "unsafe", cat, "definition_contrast"))


def more_privacy_and_lookalikes(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: made-up private individuals; safe look-alikes of the same words, figurative phrases and definitions."""
    for name in tpl.private_names:
        out.group = name
        for a in rng.sample(tpl.more_private_attributes, 3):
            text = cap(rng.choice(tpl.private_attr_frames).format(p=name, a=a))
            out.append((text, "unsafe", "illicit", "privacy_contrast"))
    # safe look-alikes
    for verb, objects in tpl.more_safe_verb_objects:
        for obj in objects:
            out.group = f"{verb} {obj}"
            for f in rng.sample(tpl.frames, 2):
                out.append((f.format(a=f"{verb} {obj}"), "safe", "", "homonym_or_target"))
    for phrase in tpl.more_figurative:
        out.group = phrase
        for f in rng.sample(tpl.figurative_frames, 2):
            out.append((f.format(a=phrase), "safe", "", "figurative"))
    for concept in tpl.more_concepts:
        out.group = concept
        for f in rng.sample(tpl.definition_frames + tpl.more_definition_frames, 3):
            out.append((cap(f.format(c=concept)), "safe", "", "definition"))


def more_history_people_and_games(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: more events (and their unsafe contrast), public figures, fictional characters and game contexts."""
    for event in tpl.more_events:
        out.group = event
        for f in rng.sample(tpl.history_frames, 3):
            out.append((f.format(e=event), "safe", "", "history"))
        f, cat = rng.choice(tpl.history_unsafe_frames + tpl.history_denial_frames)
        out.append((f.format(e=event), "unsafe", cat, "history_contrast"))
    for p in tpl.more_public_figures:
        out.group = p
        for f in rng.sample(tpl.public_info_frames + tpl.more_public_frames, 3):
            out.append((f.format(p=p), "safe", "", "privacy_public"))
        out.append((rng.choice(tpl.private_info_frames).format(p=p), "unsafe", "illicit", "privacy_contrast"))
    for f_name in tpl.more_fictional:
        out.group = f_name
        for f in rng.sample(tpl.fictional_frames + tpl.more_fictional_frames, 3):
            out.append((f.format(f=f_name), "safe", "", "privacy_fictional"))
    for action, game in tpl.more_game_contexts:
        out.group = action
        f = rng.choice(("How do I {a} in {g}?", "What's the best way to {a} in {g}?", "Steps to {a} in {g}."))
        out.append((f.format(a=action, g=game), "safe", "", "safe_context"))
        f = rng.choice(tpl.frames)
        out.append((f.format(a=action + rng.choice(tpl.real_world_suffixes)), "unsafe", "violence", "context_contrast"))


def headings_and_borderline(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: harmful tasks in heading form, per area; borderline how-tos and information in the restricted-advice
    areas."""
    for acts, cat in (
        (tpl.malware_acts, "illicit"),
        (tpl.adult_acts, "sexual"),
        (tpl.physical_harm_acts, "illicit/violent"),
        (tpl.illegal_acts, "illicit"),
        (tpl.fraud_acts, "illicit"),
        (tpl.privacy_acts, "illicit"),
    ):
        for act in acts:
            out.group = act
            for f in rng.sample(tpl.heading_frames, 2):
                out.append((f.format(a=act), "unsafe", cat, "harm_heading"))
            out.append((rng.choice(tpl.frames).format(a=act), "unsafe", cat, "harm"))
    for act in tpl.borderline_advice:
        out.group = act
        for f in rng.sample(tpl.heading_frames[:4] + tpl.frames[:6], 3):
            out.append((f.format(a=act), "borderline", "", "borderline_advice"))
    for topics, procedures, infos in (
        (tpl.health_topics, tpl.health_procedure_frames, tpl.health_info_frames),
        (tpl.assets, tpl.finance_procedure_frames, tpl.finance_info_frames),
        (tpl.legal_matters, tpl.legal_procedure_frames, tpl.legal_info_frames),
    ):
        for t in topics:
            out.group = t
            for f in rng.sample(procedures, 2):
                out.append((f.format(c=t, x=t), "borderline", "", "borderline_advice"))
            for f in rng.sample(infos, 2):
                out.append((cap(f.format(c=t, x=t)), "safe", "", "advice_info"))


def more_contexts(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v2: safe contexts of violent actions, people as benign objects, more generic harm."""
    for action, contexts in tpl.context_actions:
        out.group = action
        for c in contexts:
            out.append((rng.choice(tpl.context_frames).format(a=action, c=c), "safe", "", "safe_context"))
        out.append(
            (rng.choice(tpl.frames).format(a=action + " in real life"), "unsafe", "violence", "context_contrast")
        )
    for tmpl in tpl.more_safe_person_acts:
        out.group = tmpl
        for p in rng.sample(tpl.people[:30] + tpl.more_people[:12], 2):
            out.append((rng.choice(tpl.frames).format(a=tmpl.format(p=p)), "safe", "", "person_benign"))
    for act, cat in tpl.more_generic_harm:
        out.group = act
        for f in rng.sample(tpl.frames + tpl.doing_frames, 3):
            out.append((f.format(a=act), "unsafe", cat, "generic_harm"))


def help_victims(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v3: reports of what was done to oneself or someone close, asking how to get help (safe); the same openings
    asking to retaliate, and the doing side (unsafe)."""
    for harm, doing, cat in tpl.victim_reports:
        out.group = harm
        for actor in rng.sample(tpl.help_actors, 5):
            victim = rng.choice(tpl.help_victims)
            clause = report(actor, harm, victim)
            frames = [f for f in tpl.victim_help_frames if victim[2] or "school" not in f]
            text = rng.choice(frames).format(s=cap(clause), c=clause)
            out.append((for_me(text, victim), "safe", "", "help_victim"))
        clause = report(rng.choice(tpl.help_actors), harm, rng.choice(tpl.help_victims))
        f, revenge_cat = rng.choice(tpl.revenge_asks)
        out.append((f.format(s=cap(clause)), "unsafe", revenge_cat, "help_contrast"))
        obj, poss, child = rng.choice(tpl.help_victims[1:])
        act = doing.format(p=obj, pp=poss) + rng.choice(tpl.perpetrator_suffixes)
        doing_cat = "sexual/minors" if child and cat == "sexual" else cat
        out.append((rng.choice(tpl.frames + tpl.doing_frames).format(a=act), "unsafe", doing_cat, "help_contrast"))


def help_support(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v3: disclosures, struggles and threats: supporting or protecting (safe), helping the harm (unsafe)."""
    for disclosure in tpl.disclosures:
        out.group = disclosure
        for who, pronoun in rng.sample(tpl.supporters, 5):
            pr = tpl.pronouns[pronoun]
            clause = f"{who} {disclosure.format(**pr)}"
            out.append(
                (rng.choice(tpl.support_frames).format(s=cap(clause), c=clause, **pr), "safe", "", "help_support")
            )
        for who, pronoun in rng.sample(tpl.supporters, 2):
            pr = tpl.pronouns[pronoun]
            f, harm_cat = rng.choice(tpl.support_harm_asks)
            out.append((f.format(s=cap(f"{who} {disclosure.format(**pr)}"), **pr), "unsafe", harm_cat, "help_contrast"))
    for struggle in tpl.struggles:
        out.group = struggle
        for f in rng.sample(tpl.struggle_help_frames, 4):
            out.append((f.format(x=struggle), "safe", "", "help_support"))
        f, harm_cat = rng.choice(tpl.struggle_harm_asks)
        out.append((f.format(x=struggle), "unsafe", harm_cat, "help_contrast"))
    for threat, doing, cat in tpl.threats:
        out.group = threat
        for f in rng.sample(tpl.protect_frames, 4):
            out.append((f.format(v=rng.choice(tpl.protectees), t=threat), "safe", "", "help_protect"))
        out.append((rng.choice(tpl.frames + tpl.doing_frames).format(a=doing), "unsafe", cat, "help_contrast"))


def help_rights(out: Items, rng: random.Random, tpl: Templates) -> None:
    """v3: rights for one's own situation, getting help with a case, a condition or one's mental health (safe)."""
    for situation in tpl.situations:
        out.group = situation
        for f in rng.sample(tpl.rights_frames, 3):
            out.append((f.format(s=cap(situation), c=situation), "safe", "", "help_rights"))
        f, revenge_cat = rng.choice(tpl.revenge_asks)
        out.append((f.format(s=cap(situation)), "unsafe", revenge_cat, "help_contrast"))
    for situation, doing, cat in tpl.situation_twins:
        out.group = situation
        out.append((rng.choice(tpl.frames + tpl.doing_frames).format(a=doing), "unsafe", cat, "help_contrast"))
    for x in tpl.legal_cases:
        out.group = x
        for f in rng.sample(tpl.case_help_frames, 2):
            out.append((f.format(x=x), "safe", "", "help_rights"))
    for c in tpl.conditions:
        out.group = c
        out.append((rng.choice(tpl.condition_help_frames).format(c=c), "safe", "", "help_rights"))
    for i, m in enumerate(tpl.mental_health):
        out.group = m
        for f in rng.sample(tpl.mental_health_frames, 3):
            out.append((f.format(m=m), "safe", "", "help_support"))
        if i < 8:
            doing, cat = rng.choice(tpl.mental_health_harm)
            out.append((rng.choice(tpl.frames).format(a=doing.format(m=m)), "unsafe", cat, "help_contrast"))


def twin_victims(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Round 2 (own generator): retaliation, cover-up and accomplice twins of the victim reports."""
    for harm, doing, cat in tpl.victim_reports:
        out.group = harm
        clause = report(rng.choice(tpl.help_actors), harm, rng.choice(tpl.help_victims))
        f, revenge_cat = rng.choice(tpl.retaliation_asks)
        out.append((f.format(s=cap(clause)), "unsafe", revenge_cat, "help_contrast"))
        obj, poss, child = rng.choice(tpl.help_victims[1:])
        f, cover_cat = rng.choice(tpl.cover_up_asks)
        own_cat = "sexual/minors" if child and cat == "sexual" else cat
        text = f.format(s=first_person(harm, tpl.first_person).format(v=obj, vp=poss))
        out.append((text, "unsafe", cover_cat or own_cat, "help_contrast"))
        obj, poss, child = rng.choice(tpl.help_victims[1:])
        who = rng.choice(tpl.supporters)[0]
        act = doing.format(p=obj, pp=poss)
        text = rng.choice(tpl.accomplice_frames).format(w=who, a=act)
        out.append((cap(text), "unsafe", "sexual/minors" if child and cat == "sexual" else cat, "help_contrast"))


def twin_support(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Round 2: more unsafe twins of disclosures, struggles, threats and situations."""
    for disclosure in tpl.disclosures:
        out.group = disclosure
        for (who, pronoun), (f, harm_cat) in zip(
            rng.sample(tpl.supporters, 3), rng.sample(tpl.support_harm_extra, 3), strict=True
        ):
            pr = tpl.pronouns[pronoun]
            text = f.format(s=cap(f"{who} {disclosure.format(**pr)}"), **pr)
            out.append((text, "unsafe", harm_cat, "help_contrast"))
    for struggle in tpl.struggles:
        out.group = struggle
        for f, harm_cat in rng.sample(tpl.struggle_harm_extra, 3):
            out.append((f.format(x=struggle), "unsafe", harm_cat, "help_contrast"))
    for threat, doing, cat in tpl.threats:
        out.group = threat
        out.append((rng.choice(tpl.frames + tpl.doing_frames).format(a=doing), "unsafe", cat, "help_contrast"))
        out.append((rng.choice(tpl.evasion_frames).format(a=doing), "unsafe", cat, "help_contrast"))
        text = rng.choice(tpl.accomplice_frames).format(w=rng.choice(tpl.supporters)[0], a=doing)
        out.append((cap(text), "unsafe", cat, "help_contrast"))
    for situation in tpl.situations:
        out.group = situation
        f, revenge_cat = rng.choice(tpl.retaliation_asks)
        out.append((f.format(s=cap(situation)), "unsafe", revenge_cat, "help_contrast"))
    for situation, doing, cat in tpl.situation_twins:
        out.group = situation
        out.append((rng.choice(tpl.evasion_frames).format(a=doing), "unsafe", cat, "help_contrast"))


def twin_advice(out: Items, rng: random.Random, tpl: Templates) -> None:
    """Round 2: restricted advice for one's own case and mental-health twins."""
    for x in tpl.legal_cases:
        out.group = x
        for f in rng.sample(tpl.case_advice_asks, 2):
            out.append((f.format(x=x), "unsafe", "", "help_contrast"))
    for c in tpl.conditions:
        out.group = c
        for f in rng.sample(tpl.condition_advice_asks, 2):
            out.append((f.format(c=c), "unsafe", "", "help_contrast"))
    for i, m in enumerate(tpl.mental_health):
        out.group = m
        for f, cat in rng.sample(tpl.mental_health_asks, 2 if i < 8 else 3):
            out.append((f.format(m=m), "unsafe", cat, "help_contrast"))


MAIN_FAMILIES: tuple[Family, ...] = (
    violence_and_harms,
    homonyms_and_safe_contexts,
    definitions_and_history,
    discrimination,
    privacy,
    benign_requests,
    lookalikes,
    private_attributes,
    history_contrasts,
    supremacy_and_noun_phrases,
    noise,
    refusals_and_answers,
    restricted_advice,
    more_violence,
    more_privacy_and_lookalikes,
    more_history_people_and_games,
    headings_and_borderline,
    more_contexts,
    help_victims,
    help_support,
    help_rights,
)
TWIN_FAMILIES: tuple[Family, ...] = (twin_victims, twin_support, twin_advice)
