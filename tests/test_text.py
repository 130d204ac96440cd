from rag.text import locate, normalize, sentence_spans, split_sentences


def test_sentences_end_at_chinese_punctuation_and_keep_closing_quotes():
    text = "他说：“好。”然后走了！是吗？"
    assert split_sentences(text) == ["他说：“好。”", "然后走了！", "是吗？"]


def test_sentences_end_at_line_breaks_and_skip_blank_lines():
    assert split_sentences("标题\n\n正文第一句。第二句") == ["标题", "正文第一句。", "第二句"]


def test_sentence_spans_point_into_the_text():
    text = "  一句。 两句！"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["一句。", "两句！"]


def test_normalize_folds_width_and_whitespace():
    assert normalize("１２３５１ 热线\u3000ＡＢ") == "12351热线AB"


def test_locate_finds_a_quote_across_a_line_break():
    source = "前文。连日来，受寒潮影响，绍兴地\n\n区陆续出现冰冻雨雪天气。后文"
    span = locate("连日来，受寒潮影响，绍兴地区陆续出现冰冻雨雪天气。", source)
    assert span is not None
    assert source[span[0]:span[1]] == "连日来，受寒潮影响，绍兴地\n\n区陆续出现冰冻雨雪天气。"


def test_locate_respects_the_window_and_reports_absence():
    source = "甲。乙。甲。"
    assert locate("甲。", source, 2) == (4, 6)
    assert locate("丙。", source) is None
    assert locate("   ", source) is None

