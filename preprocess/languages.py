"""The language codes the pipeline knows, and the check of ``--src-lang`` / ``--tgt-lang``.

A code selects per-language rules (English clitics, Romance elision, scripts without spaces in
:mod:`.wordseg`; the joiner of translated text in :mod:`.translate`; Stanza models by code) and,
later, the metric of ``grafusion-evaluate``.  A code the pipeline does not know (``eng`` for
``en``) would silently turn those rules off, so it is refused unless declared with
``--extra-lang CODE`` (a language outside this list, processed with the generic rules).

Known: the ISO 639-1 codes of the languages XLM-R was trained on (CC-100, Conneau et al. 2020,
table 6), which include every language of MLQA, XQuAD and TyDiQA-GoldP.
"""
from fairseq_grafusion.errors import GraFusionError

KNOWN_LANGUAGES = frozenset("""
af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi
hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa
pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh
""".split())


def check_language(code, option, extra=()):
    """One line naming ``option`` if ``code`` is neither known nor declared in ``extra``."""
    if code in KNOWN_LANGUAGES or code in extra:
        return
    close = sorted(k for k in KNOWN_LANGUAGES if code and k[0] == code[0].lower() and k[-1:] in code.lower())
    hint = f" (did you mean {' or '.join(close[:3])}?)" if close else ""
    raise GraFusionError(f"{option} {code!r}: not a language code the pipeline knows{hint}; codes "
                         "are ISO 639-1 (en, de, zh, ...); declare another language with "
                         f"--extra-lang {code}")
