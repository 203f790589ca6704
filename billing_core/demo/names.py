"""Realistic-looking Chinese names, Guangzhou addresses and phone numbers for the demo utility.

Everything is drawn from a caller's seeded `random.Random`, so the same seed gives the same
people. The people are invented; any likeness to a real account is chance.
"""

from __future__ import annotations

import random
import string

# The most common surnames, roughly in order of frequency (commoner ones drawn more often).
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任"
    "卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
)
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬志坚建国家俊嘉欣子轩梓涵浩然"
    "晓东海燕少华永健锦辉振宇思颖佩珊丽珍惠玲国强文杰伟明美玲淑仪嘉怡泽楷宇航雨桐一鸣佳琪俊杰诗婷"
)
# Guangzhou districts with their numeric code used in account numbers, and a few real streets each.
DISTRICTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "天河区": (1, ("天河北路", "体育西路", "天河路", "中山大道西", "黄埔大道西", "林和西路", "龙口西路", "石牌东路")),
    "越秀区": (2, ("北京路", "中山五路", "东风中路", "环市东路", "解放北路", "农林下路", "越秀北路")),
    "海珠区": (3, ("江南大道中", "新港西路", "工业大道中", "昌岗中路", "宝岗大道", "滨江东路")),
    "荔湾区": (4, ("中山七路", "芳村大道东", "龙津西路", "宝华路", "康王中路", "花地大道北")),
    "白云区": (5, ("白云大道北", "广园中路", "机场路", "同和路", "黄石东路", "太和镇大源中路")),
    "黄埔区": (6, ("科学大道", "开源大道", "黄埔东路", "丰乐北路", "香雪三路", "开创大道")),
    "番禺区": (7, ("市桥街光明北路", "大石街迎宾路", "南村镇兴业大道", "石楼镇莲花大道", "钟村街汉溪大道")),
    "花都区": (8, ("新华街公益路", "狮岭镇康政路", "花山镇龙口路", "炭步镇文化路")),
    "南沙区": (9, ("黄阁镇市南路", "南沙街港前大道", "横沥镇明珠湾路", "东涌镇市南公路")),
    "从化区": (10, ("街口街河滨北路", "温泉镇温泉东路", "鳌头镇新围路", "太平镇广从南路")),
    "增城区": (11, ("荔城街府佑路", "新塘镇港口大道", "石滩镇三江路", "派潭镇高滩路")),
}
URBAN = ("天河区", "越秀区", "海珠区", "荔湾区", "白云区", "番禺区", "黄埔区")
INDUSTRIAL = ("黄埔区", "番禺区", "南沙区", "白云区", "花都区", "增城区")
RURAL = ("从化区", "增城区", "花都区", "南沙区", "番禺区")
ESTATES = ("花园", "新村", "小区", "苑", "雅居", "华庭", "公寓")
VILLAGES = ("石岭", "大岭", "新围", "塘尾", "元洲", "龙潭", "沙浦", "白石", "良口", "西和", "龙岗", "河洞")
SHOP_KINDS = ("餐饮店", "便利店", "美发店", "五金店", "药房", "茶餐厅", "服装店", "快递驿站", "水果店", "面包店")
FIRM_WORDS = ("华南", "粤兴", "穗丰", "恒达", "广源", "越秀", "南方", "岭南", "金穗", "宏图", "信达", "利华")
FACTORY_KINDS = ("电子科技有限公司", "塑料制品有限公司", "五金制品有限公司", "食品有限公司", "纺织有限公司",
                 "精密机械有限公司", "包装材料有限公司", "汽车零部件有限公司", "医药有限公司", "冷链物流有限公司")
FARM_KINDS = ("农业专业合作社", "养殖场", "果蔬种植场", "水产养殖场", "花卉基地", "村经济合作社排灌站")
MOBILE_PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "158", "159", "186", "188", "189",
                   "177", "199", "133", "180", "187", "131", "132", "156")


def person_name(rng: random.Random) -> str:
    """A two- or three-character Chinese name."""
    surname = SURNAMES[min(int(rng.expovariate(1 / 18)), len(SURNAMES) - 1)]
    given = rng.choice(GIVEN_CHARS) if rng.random() < 0.25 else rng.choice(GIVEN_CHARS) + rng.choice(GIVEN_CHARS)
    return surname + given


def shop_name(rng: random.Random, street: str) -> str:
    return f"{person_name(rng)[0]}记{rng.choice(SHOP_KINDS)}（{street}店）"


def firm_name(rng: random.Random) -> str:
    return f"广州{rng.choice(FIRM_WORDS)}{rng.choice(FIRM_WORDS)}{rng.choice(FACTORY_KINDS)}"


def farm_name(rng: random.Random, district: str) -> str:
    return f"广州市{district}{rng.choice(VILLAGES)}{rng.choice(FARM_KINDS)}"


def home_address(rng: random.Random, district: str) -> str:
    street = rng.choice(DISTRICTS[district][1])
    return (f"广州市{district}{street}{rng.randint(1, 999)}号{rng.choice(string.ascii_uppercase[:6])}"
            f"{rng.choice(ESTATES)}{rng.randint(1, 30)}栋{rng.randint(1, 33)}{rng.randint(1, 8):02d}房")


def shop_address(rng: random.Random, district: str) -> str:
    return f"广州市{district}{rng.choice(DISTRICTS[district][1])}{rng.randint(1, 999)}号首层{rng.randint(1, 20)}号铺"


def plant_address(rng: random.Random, district: str) -> str:
    return f"广州市{district}{rng.choice(DISTRICTS[district][1])}{rng.randint(1, 300)}号{rng.randint(1, 6)}号厂房"


def farm_address(rng: random.Random, district: str) -> str:
    return f"广州市{district}{rng.choice(DISTRICTS[district][1][-2:])}{rng.choice(VILLAGES)}村{rng.randint(1, 12)}社"


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def id_last4(rng: random.Random) -> str:
    """Last four characters of a resident ID: three digits and a digit or X (the checksum)."""
    return f"{rng.randint(0, 999):03d}" + rng.choice("0123456789X")


def wechat_openid(rng: random.Random) -> str:
    """An openid-shaped string (28 characters, 'o' + base64url-ish), unique per seed in practice."""
    alphabet = string.ascii_letters + string.digits + "-_"
    return "o" + "".join(rng.choice(alphabet) for _ in range(27))
