from pathlib import Path

import pytest

from rag.ingest.documents import Document, load_document
from rag.ingest.headings import (
    analyse, framed_heading, headline_shape, is_credit, markdown_heading, numbered_rank,
)

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def structures():
    return {p.name[:3]: analyse(load_document(p)) for p in sorted(SEEDS.glob("*.txt"))}


def _titles(structure, kind=None):
    return [h.title for h in structure.all_headings() if kind is None or h.kind == kind]


def _doc(text: str) -> Document:
    return Document("t.txt", Path("t.txt"), text, "utf-8")


# ------------------------------------------------------------- line patterns

@pytest.mark.parametrize("line,expected", [
    ("# 全国工会十大新闻", (1, "全国工会十大新闻")),
    ("### 工会服务站点双15工程启动", (3, "工会服务站点双15工程启动")),
    ("## 标题 ##", (2, "标题")),
])
def test_markdown_headings(line, expected):
    assert markdown_heading(line) == expected


@pytest.mark.parametrize("line", ["#", "#####", "没有井号的标题", "编号#1的说明"])
def test_not_markdown_headings(line):
    assert markdown_heading(line) is None


def test_framed_headings():
    assert framed_heading("■ 凝聚团结奋斗正能量 ■") == "凝聚团结奋斗正能量"
    assert framed_heading("◆改革创新◆") == "改革创新"
    assert framed_heading("■ 只有开头的方框") is None
    assert framed_heading("■ 不同的框 ◆") is None


@pytest.mark.parametrize("line,rank", [
    ("第一编 总则", 2),
    ("第二章 工会组织", 3),
    ("第三节 基层工会", 4),
    ("一、团结引导职工群众听党话、跟党走", 5),
    ("十、创新服务更加便民亲民利民", 5),
    ("（一）强化思想引领", 6),
    ("(二) 服务大局", 6),
    ("1. 总体要求", 7),
    ("2、工作措施", 7),
    ("（1）加强领导", 8),
    ("第十二条 工会经费", 9),
])
def test_numbered_headings(line, rank):
    assert numbered_rank(line) == rank


@pytest.mark.parametrize("line", [
    "一、拍卖标的：有底价网络竞价方式拍卖。",                 # a list item: a full sentence
    "三、竞买条件：竞买人须具备竞买条件：具有完全民事行为能力的个人或法人；在中华人民共和国境内注册的企业单位均可参加。",
    "一是工会改革成效显著。围绕强“三性”、去“四化”，扎实推进工会改",  # 一是… sentences
    "一是全面从严治党得到加强",
    "1.5亿职工参与",                                         # a decimal, not a number prefix
    "2023年全国工会工作要点",
    "第一条 为了保障工会在国家政治、经济和社会生活中的地位，确定工会的权利与义务，制定本法。",
    "一、" + "很长的标题" * 20,
    "1、",
])
def test_not_numbered_headings(line):
    assert numbered_rank(line) is None


@pytest.mark.parametrize("line", ["新华社发(胡学军 摄)", "王海燕、郭微 摄", "本报记者 赵黎浩 摄",
                                  "工人日报记者 郑莉", "本报记者 吴泽思 马安妮 武文欣", "据《人民日报》"])
def test_photo_credits_and_bylines_are_recognised(line):
    assert is_credit(line)
    assert not headline_shape(line)


@pytest.mark.parametrize("line", ["中挪海员集体协商在泉州举行", "花开春意浓", "上虞供电：跨区支援战冰雪",
                                  "你抗冰除险 我温暖守护", "工会驻村工作队来了以后……"])
def test_headline_shapes(line):
    assert headline_shape(line)


@pytest.mark.parametrize("line", [
    "连日来，受寒潮影响，绍兴地",          # a comma: a sentence fragment
    "一年一度的“两会时间”开启。",          # a sentence
    "奋进新征程”主题劳动和技能竞赛以及",    # closes a quote it never opened
    "这是一个超过三十多个字的很长很长的句子片段并且没有任何标点符号在里面的行",
    "新增实招：",                          # a lead-in to a list
    "2024",
])
def test_not_headline_shapes(line):
    assert not headline_shape(line)


# ------------------------------------------------------------- on the seeds

TOC_TITLES = [
    "中国工会第十七次全国代表大会以来工作综述",
    "甘肃省工会第十二次代表大会以来工作综述",
    "淮北市总工会着力打造新时代“五型工会”",                       # TOC truncated with …
    "平凉市总工会深学细悟砥砺奋进奋力开创新征程工会工作新局面",       # TOC ends ………101
    "来宾市工会亮点工作扫描",                                      # TOC prefixed 24：
    "以党建引领工会创新，激发企业职工群众的创造活力",                  # has a comma
]


def test_the_34_article_titles_of_the_compilation_are_its_top_level_headings(structures):
    structure = structures["002"]
    articles = [h for h in structure.headings if h.kind == "article"]
    assert len(articles) == 34
    assert all(h.level == 1 for h in articles)
    titles = [h.title for h in articles]
    for title in TOC_TITLES:
        assert title in titles
    assert titles[0] == TOC_TITLES[0] and titles[-1] == TOC_TITLES[-1]
    # Each title is a body line after the TOC, not the TOC entry itself.
    assert all(h.start > structure.toc[1] for h in articles)


def test_the_table_of_contents_is_one_section_with_its_group_lines(structures):
    structure = structures["002"]
    toc_sections = [s for s in structure.sections if s.heading is not None and s.heading.kind == "toc"]
    assert len(toc_sections) == 1
    section = toc_sections[0]
    assert section.path == ["目 录"]
    text = section.text
    assert "一、各级工会" in text and "二、单位工会" in text and "三、企业工会" in text
    assert "24：来宾市工会亮点工作扫描" in text and "北大荒集团工会工作综述" in text
    assert not any(h.title in ("一、各级工会", "二、单位工会", "三、企业工会") for h in structure.all_headings())


def test_numbered_sections_nest_under_their_article_including_a_broken_one(structures):
    structure = structures["002"]
    lasa = next(h for h in structure.headings if h.title == "拉萨市工会事业高质量发展综述")
    children = [h.title for h in lasa.children]
    assert len(children) == 5
    assert children[3] == "四、坚持以工会改革为主线，工会组织的吸引力、凝聚力和认同感显著增强"
    assert all(c.level == 2 and c.kind == "numbered" for c in lasa.children)


def test_long_numbered_headings_of_quijing_are_found(structures):
    qujing = next(h for h in structures["002"].headings if h.title == "曲靖市工会工作综述")
    assert [c.title[:2] for c in qujing.children] == ["一、", "二、", "三、", "四、", "五、"]


def test_newspaper_headlines_are_headings(structures):
    titles_003 = _titles(structures["003"], "headline")
    for title in ["花开春意浓", "你抗冰除险 我温暖守护", "上虞供电：跨区支援战冰雪", "拍卖公告",
                  "凝聚实现高质量发展的“工力量”", "奋进新征程，当好职工信赖的“娘家人”"]:
        assert title in titles_003
    titles_004 = _titles(structures["004"], "headline")
    for title in ["中挪海员集体协商在泉州举行", "成都锦江区发布工会驿站建设操作指引", "工会送福",
                  "“温暖有你 共赴美好”2025年新就业形态劳动者新春联谊会播出",
                  "2024年全国工会为职工解难题办实事成效显著", "工会驻村工作队来了以后……",
                  "村容村貌焕然一新", "培训班办在“家门口”", "村里建起“农民工之家”"]:
        assert title in titles_004


def test_fragments_credits_and_short_sentences_are_not_headings(structures):
    every = [t for s in structures.values() for t in _titles(s)]
    joined = "\n".join(every)
    for text in ["连日来，受寒潮影响，绍兴地", "在横岗村山上", "间温度降至零下5摄氏度", "据介绍，三分球",
                 "春节期间，还有多场职工文艺节目", "在参加中国工会十八大的代", "国手李缘入",
                 "新华社发(胡学军 摄)", "王海燕、郭微 摄", "本报记者 赵黎浩 摄", "据《人民日报》",
                 "工人日报记者 郑莉", "一年一度的“两会时间”开启。", "劳动创造幸福，奋斗铸就伟大。",
                 "新增实招：", "一、拍卖标的", "一是", "网络招聘、现场招聘", "奋进新征程”主题"]:
        assert text not in joined, text


def test_framed_and_markdown_seeds(structures):
    assert _titles(structures["000"], "framed") == ["凝聚团结奋斗正能量", "改革创新打造活力工会", "职工“娘家人”的暖心事"]
    md = structures["001"]
    assert len(_titles(md, "markdown")) == 13
    news = next(h for h in md.headings if h.title == "全国工会十大新闻")
    assert len(news.children) == 5 and all(c.rank == 3 for c in news.children)


def test_headline_stack_nests_kicker_title_and_subtitle(structures):
    root = structures["003"].headings[0]
    assert root.title == "看天下"
    assert [h.title for h in root.walk()][:3] == ["看天下", "两会特稿", "奋进新征程，当好职工信赖的“娘家人”"]


def test_a_toc_without_matches_and_no_headings_still_gives_one_section():
    structure = analyse(_doc("只有一段普通的正文，没有任何标题。\n第二段正文。"))
    assert structure.headings == []
    assert len(structure.sections) == 1 and structure.sections[0].path == []


def test_a_small_compilation_with_its_own_toc():
    text = ("目录\n\n春季工作总结……1\n夏季工作总结　　3\n秋季工作…　　5\n\n"
            "春季工作总结\n\n春天做了很多事。\n\n夏季工作总结\n\n夏天也做了很多事。\n\n"
            "秋季工作回顾与展望\n\n秋天收获满满。\n")
    structure = analyse(_doc(text))
    assert [h.title for h in structure.headings] == ["目录", "春季工作总结", "夏季工作总结", "秋季工作回顾与展望"]
    assert [h.kind for h in structure.headings] == ["toc", "article", "article", "article"]
