"""A synthetic bilingual QA task with a known word alignment (tests, the sample, the ablation).

English ("source") words are ``e0 .. e{V-1}``; the target language maps every word through a
fixed random bijection to ``t0 .. t{V-1}`` and swaps adjacent words with probability
``reorder`` (local reordering), so the gold alignment is known exactly.  Some words are written as
two pieces (``e12`` -> ``e12@@ e12_``), which exercises the token-to-word maps.

With ``task="key"`` the question names an anchor word of the passage and the answer is the one or
two words after it; with ``task="marker"`` (easy, for smoke tests) the answer is the word ``e0`` /
its translation itself, which occurs once in every passage.  Dependency edges link neighbouring
words inside each question and passage (a stand-in for a parse).  ``align_noise`` replaces that
fraction of the alignment links with a link to a random wrong word or drops it (half each); the
noise has its own random stream (``noise_rng``), so data written with the same ``seed`` at
different noise rates holds the same texts and differs only in the alignment.

``homonyms=True`` (task ``key`` only) makes the target language lose information that English
keeps: the target vocabulary merges English words in pairs (``e_a`` and ``e_b`` both translate
to one word ``t_k``, many-to-one), and every passage contains both the question's key word and
its homonym partner, each followed by other words.  In the target language the key then occurs
twice and only the English side (through the alignment) says which occurrence the question
means, so a reader of the target side alone can at best guess between the two.
"""
import os

import numpy as np
from fairseq.data import Dictionary

from .data import PairWriter
from .data.fingerprints import manifest_fields
from .squad import write_squad


def _word_pieces(word, split):
    return [word + "@@", word + "_"] if split else [word]


class SyntheticXMRC:
    """Generates examples; ``rng`` and the vocabulary are fixed by ``seed``."""

    def __init__(self, vocab=60, seed=0, reorder=0.3, align_noise=0.0, passage_words=(8, 16),
                 task="key", homonyms=False):
        if task not in ("key", "marker"):
            raise ValueError(f"unknown synthetic task {task!r}")
        if homonyms and task != "key":
            raise ValueError("homonyms=True needs task='key'")
        self.homonyms = homonyms
        self.vocab, self.reorder, self.align_noise, self.task = vocab, reorder, align_noise, task
        self.passage_words = passage_words
        rng = np.random.RandomState(seed)
        self.translation = rng.permutation(vocab)
        self.two_pieces = rng.rand(vocab) < 0.25
        source_of = np.argsort(self.translation)  # t_k translates e_{source_of[k]}
        self.pieces = {
            "e": [_word_pieces(f"e{i}", self.two_pieces[i]) for i in range(vocab)],
            "t": [_word_pieces(f"t{k}", self.two_pieces[source_of[k]]) for k in range(vocab)],
        }
        self.dictionary = Dictionary()
        for prefix in ("e", "t"):
            for pieces in self.pieces[prefix]:
                for piece in pieces:
                    self.dictionary.add_symbol(piece)
        self.partner = None
        if homonyms:  # drawn after everything above, so homonyms=False keeps its data
            order = 1 + rng.permutation(vocab - 1)  # e0 (the marker) stays unpaired
            self.partner = np.arange(vocab)
            for a, b in zip(order[0::2], order[1::2]):
                self.partner[a], self.partner[b] = b, a
                self.translation[b] = self.translation[a]  # both now translate to one word

    # -- text ------------------------------------------------------------------------------
    def _sentence_pair(self, rng):
        n = rng.randint(*self.passage_words)
        src = 1 + rng.choice(self.vocab - 1, size=n, replace=False)  # e0 is the marker
        order = np.arange(n)
        i = 0
        while i < n - 1:
            if rng.rand() < self.reorder:
                order[i], order[i + 1] = order[i + 1], order[i]
                i += 2
            else:
                i += 1
        tgt = self.translation[src[order]]
        # tgt word k is the translation of src word order[k]
        return src, tgt, order

    def example(self, rng):
        """One example as word lists, the gold alignment and the answer word spans."""
        p_src, p_tgt, p_order = self._sentence_pair(rng)
        key = rng.randint(0, len(p_src) - 2)
        if self.homonyms:  # the key's partner elsewhere, followed by a word, answers apart
            free = np.setdiff1d(np.arange(1, self.vocab), p_src)
            if self.partner[p_src[key]] == p_src[key]:  # the one unpaired word (odd vocab)
                p_src[key] = rng.choice(free[self.partner[free] != free])
                free = np.setdiff1d(np.arange(1, self.vocab), p_src)
            partner = self.partner[p_src[key]]
            free = free[free != partner]
            p_src[p_src == partner] = rng.choice(free)  # if already present, moved below
            places = [j for j in range(len(p_src) - 1) if abs(j - key) > 2]
            p_src[places[rng.randint(len(places))]] = partner
            p_tgt = self.translation[p_src[p_order]]
        if self.task == "marker":
            p_src[key] = 0
            p_tgt = self.translation[p_src[p_order]]
        length = 1 + int(rng.rand() < 0.3)
        ans_src = list(range(key + 1, min(key + 1 + length, len(p_src))))
        if self.task == "marker":
            ans_src = [key]
        fillers = 1 + rng.choice(self.vocab - 1, size=2)
        q_src = np.array([fillers[0], p_src[key], fillers[1]])
        q_tgt = self.translation[q_src]
        inverse = np.argsort(p_order)  # src word j sits at tgt position inverse[j]
        ans_tgt = sorted(inverse[ans_src])
        return dict(q_src=q_src, q_tgt=q_tgt, p_src=p_src, p_tgt=p_tgt, p_order=p_order,
                    ans_src=(ans_src[0], ans_src[-1]), ans_tgt=(ans_tgt[0], ans_tgt[-1]))

    # -- encoding --------------------------------------------------------------------------
    def _encode(self, prefix, question, passage):
        """``<s> q </s></s> p </s>`` -> token ids, token->word map, word index where the passage
        starts, the passage text and per token its ``(char_start, char_end)`` in that text."""
        d = self.dictionary
        tokens, words, offsets = [d.bos()], [0], [(-1, -1)]
        n_words, chars = 1, 0

        def add_words(ids, in_passage):
            nonlocal n_words, chars
            for w in ids:
                span = (chars, chars + len(f"{prefix}{w}")) if in_passage else (-1, -1)
                for piece in self.pieces[prefix][w]:
                    tokens.append(d.index(piece))
                    words.append(n_words)
                    offsets.append(span)
                n_words += 1
                if in_passage:
                    chars = span[1] + 1

        def add_special(idx):
            nonlocal n_words
            tokens.append(idx)
            words.append(n_words)
            offsets.append((-1, -1))
            n_words += 1

        add_words(question, False)
        add_special(d.eos())
        add_special(d.eos())
        passage_start = n_words
        add_words(passage, True)
        add_special(d.eos())
        text = " ".join(f"{prefix}{w}" for w in passage)
        return np.array(tokens), np.array(words), passage_start, text, np.array(offsets)

    def encoded(self, rng, noise_rng=None):
        """One example in the binary format's fields (``PairWriter.add`` keyword arguments)."""
        return self.encoded_with_text(rng, noise_rng)[0]

    def encoded_with_text(self, rng, noise_rng=None):
        """``(fields, qa)``: the fields plus ``src_offsets`` / ``tgt_offsets``, and per language
        the question, context and answer text (``qa["src"]``, ``qa["tgt"]``).  The alignment
        noise is drawn from ``noise_rng`` (default: ``rng``)."""
        ex = self.example(rng)
        s_tok, s_word, s_pstart, s_text, s_off = self._encode("e", ex["q_src"], ex["p_src"])
        t_tok, t_word, t_pstart, t_text, t_off = self._encode("t", ex["q_tgt"], ex["p_tgt"])
        nq = len(ex["q_src"])
        # gold alignment: question word k <-> k, passage src j <-> tgt position of j
        align = [(1 + k, 1 + k) for k in range(nq)]
        inverse = np.argsort(ex["p_order"])
        align += [(s_pstart + j, t_pstart + int(inverse[j])) for j in range(len(ex["p_src"]))]
        noise = rng if noise_rng is None else noise_rng
        align = self._add_noise(np.array(align), noise, t_word.max() + 1)

        def chain(n_q, start, n_p):  # neighbouring words inside the question and the passage
            q = [(1 + k, 2 + k) for k in range(n_q - 1)]
            return np.array(q + [(start + k, start + k + 1) for k in range(n_p - 1)])

        def token_span(word_map, first_word, last_word):
            return (int(np.nonzero(word_map == first_word)[0][0]),
                    int(np.nonzero(word_map == last_word)[0][-1]))

        src_span = token_span(s_word, s_pstart + ex["ans_src"][0], s_pstart + ex["ans_src"][1])
        tgt_span = token_span(t_word, t_pstart + ex["ans_tgt"][0], t_pstart + ex["ans_tgt"][1])
        fields = dict(src_tok=s_tok, tgt_tok=t_tok, src_word=s_word, tgt_word=t_word,
                      align=align.reshape(-1),
                      src_dep=chain(nq, s_pstart, len(ex["p_src"])).reshape(-1),
                      tgt_dep=chain(nq, t_pstart, len(ex["p_tgt"])).reshape(-1),
                      span=np.array(src_span + tgt_span))
        qa = {}
        for lang, prefix, question, text, off, (start, end) in (
                ("src", "e", ex["q_src"], s_text, s_off, src_span),
                ("tgt", "t", ex["q_tgt"], t_text, t_off, tgt_span)):
            fields[f"{lang}_offsets"] = off.reshape(-1)
            qa[lang] = {"question": " ".join(f"{prefix}{w}" for w in question), "context": text,
                        "answer": text[off[start, 0]:off[end, 1]], "answer_start": int(off[start, 0])}
        return fields, qa

    def encoded_parallel(self, rng, noise_rng=None):
        """One sentence pair without a question or answer, ``[<s> sentence </s>]`` per stream, as
        ``grafusion-preprocess parallel`` writes pre-training data (no ``span`` field)."""
        src, tgt, order = self._sentence_pair(rng)
        fields = {}
        for side, prefix, words in (("src", "e", src), ("tgt", "t", tgt)):
            tokens, word_map = [self.dictionary.bos()], [0]
            for k, w in enumerate(words):
                for piece in self.pieces[prefix][w]:
                    tokens.append(self.dictionary.index(piece))
                    word_map.append(1 + k)
            tokens.append(self.dictionary.eos())
            word_map.append(1 + len(words))
            fields[f"{side}_tok"], fields[f"{side}_word"] = np.array(tokens), np.array(word_map)
            chain = [(1 + k, 2 + k) for k in range(len(words) - 1)]
            fields[f"{side}_dep"] = np.array(chain, dtype=np.int64).reshape(-1)
        inverse = np.argsort(order)  # src word j sits at tgt position inverse[j]
        align = np.array([(1 + j, 1 + int(inverse[j])) for j in range(len(src))])
        noise = rng if noise_rng is None else noise_rng
        fields["align"] = self._add_noise(align, noise, len(tgt) + 1).reshape(-1)
        return fields

    def _add_noise(self, align, rng, n_tgt_words):
        if self.align_noise <= 0:
            return align
        noisy = rng.rand(len(align)) < self.align_noise
        wrong = noisy & (rng.rand(len(align)) < 0.5)
        align = align.copy()
        align[wrong, 1] = rng.randint(1, n_tgt_words, size=int(wrong.sum()))
        return align[~(noisy & ~wrong)]

    @staticmethod
    def _streams(seed, split_index):
        """The text stream and the alignment-noise stream of one split."""
        text = np.random.RandomState(seed * 1000 + split_index)
        return text, np.random.RandomState([seed * 1000 + split_index, 1])

    def write(self, data_dir, splits=(("train", 2000), ("valid", 200)), seed=1, with_span=True):
        """Write ``dict.txt`` and the splits to ``data_dir``: the binary fields with token
        offsets (``src.offsets``, ``tgt.offsets``) and, per language, the split as SQuAD v1.1
        JSON (``{split}.src.json``, ``{split}.tgt.json``) with the example ids as question ids.
        ``with_span=False`` writes parallel sentence pairs for ``sa_graph_pretrain`` instead
        (:meth:`encoded_parallel`; no spans, offsets or JSON), as ``grafusion-preprocess
        parallel`` does.  Each split has its own text and noise streams, fixed by ``seed``.
        Returns the directory."""
        os.makedirs(data_dir, exist_ok=True)
        dict_path = os.path.join(data_dir, "dict.txt")
        self.dictionary.save(dict_path)
        if not with_span:
            for i, (split, size) in enumerate(splits):
                rng, noise_rng = self._streams(seed, i)
                with PairWriter(os.path.join(data_dir, split), len(self.dictionary) + 1,
                                with_span=False, fingerprints=manifest_fields(dict_path)) as writer:
                    for k in range(size):
                        writer.add(f"{split}-{k}", **self.encoded_parallel(rng, noise_rng))
            return data_dir
        for i, (split, size) in enumerate(splits):
            rng, noise_rng = self._streams(seed, i)
            squad = {"src": ([], []), "tgt": ([], [])}  # passages, questions
            with PairWriter(os.path.join(data_dir, split), len(self.dictionary) + 1,
                            extra_fields=("src.offsets", "tgt.offsets")) as writer:
                for k in range(size):
                    fields, qa = self.encoded_with_text(rng, noise_rng)
                    writer.add(f"{split}-{k}", **fields)
                    for lang, (passages, questions) in squad.items():
                        q = qa[lang]
                        passages.append({"context": q["context"], "title": split})
                        questions.append({"id": f"{split}-{k}", "question": q["question"], "passage": k,
                                          "answers": [{"text": q["answer"], "answer_start": q["answer_start"]}]})
                writer.fingerprints.update(manifest_fields(dict_path, squad))  # read when the manifest is written
            for lang, (passages, questions) in squad.items():
                write_squad(os.path.join(data_dir, f"{split}.{lang}.json"), passages, questions)
        return data_dir
