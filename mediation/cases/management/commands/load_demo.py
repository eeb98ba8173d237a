"""`manage.py load_demo [--cases N] [--seed S]`: the demo township 将官池镇 (许昌市建安区).

Loads the county and township agencies, a dozen users covering every role (password
`demo12345`) and N disputes and petitions spread over every state of both machines.

Every case is created and moved by the real services (`dispute_register`, `petition_receive`,
`case_transition`, `case_pause_clock`, `petition_refer_to_mediation`) with back-dated `now`
values, so events, referrals, agreements, opinions and clocks are genuine, and the clocks of
cases that have sat too long in their state are overdue today.

Idempotent: agencies and users are found by code and username (created if missing, never
overwritten), and cases are created only while the demo agencies hold none. With the same
`--seed` the same case mix, parties and texts come out; dates are relative to today.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from mediation.accounts.models import Role, User
from mediation.agencies.models import Agency, AgencyKind, AgencyLevel, ReviewingOrgan
from mediation.cases.models import (
    STATE_LABELS,
    Case,
    CaseKind,
    CasePartyRole,
    Category,
    Channel,
    DisputeState,
    MediationTrack,
    PetitionState,
    ReferralKind,
    RiskLevel,
)
from mediation.cases.services import (
    PartyInput,
    case_pause_clock,
    case_resume_clock,
    case_transition,
    dispute_register,
    petition_receive,
    petition_refer_to_mediation,
)
from mediation.core import clock as system_clock
from mediation.core.clock import SHANGHAI, local_date
from mediation.core.errors import DomainError
from mediation.deadlines.models import Clock, ClockStatus
from mediation.parties import idnumbers

PASSWORD = "demo12345"  # noqa: S105 (the published demo password)
REGION_CODE = "411003"  # 许昌市建安区 (GB/T 2260)
MAX_AGE_DAYS = 116  # registered ≤ 117 days ago; letters may arrive up to 3 days before
DEMO_GROUP = "演示办案人员"

K, L = AgencyKind, AgencyLevel

# Agencies ------------------------------------------------------------------------------------
# `parent` is the coordination ladder the system uses for 上交 (escalation), 复查 and the
# supervisors' scope: villages → 镇调委会 → 镇平安办（综治中心）→ 区综治中心; the township
# 司法所, 派出所 and 人民法庭 sit under the township 综治中心 that coordinates them.

# code, name, kind, level, parent code, case-number prefix
AGENCIES: tuple[tuple[str, str, str, str, str | None, str], ...] = (
    ("jianan-gov", "许昌市建安区人民政府", K.GOVERNMENT, L.COUNTY, None, "建安区政府"),
    ("jianan-zzzx", "建安区综治中心", K.PEACE_OFFICE, L.COUNTY, "jianan-gov", "建安综治"),
    ("jianan-xfj", "建安区信访局", K.PETITION_OFFICE, L.COUNTY, "jianan-gov", "建安"),
    ("jianan-sfj", "建安区司法局", K.JUDICIAL_OFFICE, L.COUNTY, "jianan-gov", "建安司法"),
    ("jianan-court", "许昌市建安区人民法院", K.PEOPLES_COURT, L.COUNTY, None, "建安法院"),
    ("jianan-police", "许昌市公安局建安分局", K.POLICE_STATION, L.COUNTY, None, "建安公安"),
    (
        "jgc-pab",
        "将官池镇平安办（综治中心）",
        K.PEACE_OFFICE,
        L.TOWNSHIP,
        "jianan-zzzx",
        "将官池综治",
    ),
    (
        "jgc-tjwyh",
        "将官池镇人民调解委员会",
        K.MEDIATION_COMMITTEE,
        L.TOWNSHIP,
        "jgc-pab",
        "将官池镇",
    ),
    ("jgc-sfs", "将官池镇司法所", K.JUDICIAL_OFFICE, L.TOWNSHIP, "jgc-pab", "将官池司法"),
    ("jgc-pcs", "建安分局将官池派出所", K.POLICE_STATION, L.TOWNSHIP, "jgc-pab", "将官池派出所"),
    (
        "jgc-court",
        "建安区人民法院将官池人民法庭",
        K.PEOPLES_COURT,
        L.TOWNSHIP,
        "jgc-pab",
        "将官池法庭",
    ),
    ("jgc-xfb", "将官池镇信访办", K.PETITION_OFFICE, L.TOWNSHIP, "jianan-xfj", "将官池"),
    (
        "jgc-v-jgc",
        "将官池社区人民调解委员会",
        K.MEDIATION_COMMITTEE,
        L.VILLAGE,
        "jgc-tjwyh",
        "将官池社区",
    ),
    ("jgc-v-qh", "秋湖村人民调解委员会", K.MEDIATION_COMMITTEE, L.VILLAGE, "jgc-tjwyh", "秋湖村"),
    (
        "jgc-v-nsz",
        "南石庄村人民调解委员会",
        K.MEDIATION_COMMITTEE,
        L.VILLAGE,
        "jgc-tjwyh",
        "南石庄村",
    ),
    ("jgc-v-zs", "朱寺村人民调解委员会", K.MEDIATION_COMMITTEE, L.VILLAGE, "jgc-tjwyh", "朱寺村"),
    (
        "jgc-v-slz",
        "孙刘赵村人民调解委员会",
        K.MEDIATION_COMMITTEE,
        L.VILLAGE,
        "jgc-tjwyh",
        "孙刘赵村",
    ),
    ("jgc-v-gj", "郭集村人民调解委员会", K.MEDIATION_COMMITTEE, L.VILLAGE, "jgc-tjwyh", "郭集村"),
)
DEMO_AGENCY_CODES = tuple(a[0] for a in AGENCIES)
# 复查/复核 organs besides the tree parent (agencies.ReviewingOrgan): matters the township
# 综治中心 handled are reviewed by the district 信访局 (信访工作条例 Art 35, 上一级机关).
REVIEWING_ORGANS = (
    ("jgc-pab", "jianan-xfj", "区政府指定：镇综治中心办理的信访事项由区信访局复查"),
)
TOWNSHIP_CODE = "jgc-pab"

# username, display name, role, agency code, is the agency's head
USERS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("admin", "系统管理员", Role.ADMINISTRATOR, "jianan-zzzx", False),
    ("duban1", "周立新", Role.SUPERVISOR, "jgc-pab", True),
    ("duban2", "郭振华", Role.SUPERVISOR, "jianan-gov", False),
    ("tiaojie1", "李秀兰", Role.MEDIATOR, "jgc-tjwyh", True),
    ("tiaojie2", "王德胜", Role.MEDIATOR, "jgc-v-qh", True),
    ("tiaojie3", "陈桂芳", Role.MEDIATOR, "jgc-v-nsz", True),
    ("tiaojie4", "赵建国", Role.MEDIATOR, "jgc-tjwyh", False),
    ("sifa1", "孙志刚", Role.JUDICIAL_OFFICER, "jgc-sfs", True),
    ("jingcha1", "刘洋", Role.POLICE_OFFICER, "jgc-pcs", True),
    ("shuji1", "张静", Role.COURT_CLERK, "jgc-court", False),
    ("xinfang1", "马红梅", Role.PETITION_OFFICER, "jgc-xfb", True),
    ("xinfang2", "杨帆", Role.PETITION_OFFICER, "jianan-xfj", True),
)
USER_NOTES = {
    "admin": "超级用户，管理机构、用户、节假日",
    "duban1": "镇综治中心：登记、研判分流、交办、督办",
    "duban2": "区政府（复查复核）：复核、督办全区",
    "tiaojie1": "镇调委会主任：受理、调解",
    "tiaojie2": "秋湖村调委会",
    "tiaojie3": "南石庄村调委会",
    "tiaojie4": "镇调委会调解员",
    "sifa1": "司法所所长：登记、研判、调解",
    "jingcha1": "派出所：警调对接登记",
    "shuji1": "人民法庭：诉调对接登记、录入司法确认裁定",
    "xinfang1": "镇信访办：登记、受理、办理信访事项",
    "xinfang2": "区信访局：转送交办、复查",
}
_AGENCY_NAMES = {code: name for code, name, *_rest in AGENCIES}
# Read by mediation/devserver.py for its start-up banner.
DEMO_LOGINS: tuple[dict[str, str], ...] = tuple(
    {
        "username": username,
        "password": PASSWORD,
        "name": display_name,
        "agency": _AGENCY_NAMES[agency_code],
        "use": USER_NOTES[username],
    }
    for username, display_name, _role, agency_code, _head in USERS
)
# Everyone may open the admin for now: view the case files, register cases through the
# services. Transitions are governed by role and agency (mediation.cases.workflow).
GROUP_PERMISSIONS = (
    ("cases", "view_dispute"),
    ("cases", "add_dispute"),
    ("cases", "view_petition"),
    ("cases", "add_petition"),
    ("cases", "view_caseevent"),
    ("cases", "view_caseparty"),
    ("cases", "view_referral"),
    ("cases", "view_agreement"),
    ("cases", "view_opinion"),
    ("cases", "view_extension"),
    ("cases", "view_category"),
    ("cases", "view_channel"),
    ("deadlines", "view_clock"),
    ("deadlines", "view_clockpause"),
    ("deadlines", "view_holidayoverride"),
    ("deadlines", "view_holidayyear"),
    ("agencies", "view_agency"),
    ("parties", "view_party"),
)
REVEAL_ROLES = (Role.SUPERVISOR, Role.JUDICIAL_OFFICER)

# 访调对接: the dispute category a petition's content domain becomes.
PETITION_TO_DISPUTE_CATEGORY = {
    "P-LDSB": "LDZY",
    "P-GTZY": "ZDCQ",
    "P-NCNY": "SLTD",
    "P-CXJS": "LL",
    "P-HJBH": "HJWR",
    "P-WSJK": "YL",
}

# People and places ---------------------------------------------------------------------------

VILLAGES = (
    "将官池社区",
    "祖师社区",
    "羊圈村",
    "孙刘赵村",
    "南石庄村",
    "黄屯村",
    "新韩村",
    "朱寺村",
    "大胡庄村",
    "牛庄村",
    "陈庄村",
    "齐庄村",
    "郭集村",
    "秋湖村",
    "辛集村",
    "王店村",
    "董庄村",
    "湖徐村",
    "高楼陈村",
)
VILLAGE_COMMITTEES = {
    "将官池社区": "jgc-v-jgc",
    "秋湖村": "jgc-v-qh",
    "南石庄村": "jgc-v-nsz",
    "朱寺村": "jgc-v-zs",
    "孙刘赵村": "jgc-v-slz",
    "郭集村": "jgc-v-gj",
}
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯史陶贺顾毛郝"
)
MALE_GIVEN = (  # noqa: SIM905 (a word list reads better as one string)
    "建国 建军 国强 志强 德明 春生 红旗 卫东 铁柱 宝山 海涛 永刚 振华 文斌 俊杰 晓东 伟 磊 军 勇 "
    "刚 超 鹏 浩然 子豪 宇航 金锁 长顺 福来 新民 保国 向阳 立功 满仓 二虎 书亮 庆丰"
).split()
FEMALE_GIVEN = (  # noqa: SIM905
    "秀英 桂兰 玉梅 秀兰 凤英 淑珍 春花 红霞 丽娟 海燕 艳 静 敏 芳 娟 霞 丽 雪梅 晓燕 思雨 "
    "雨涵 欣怡 梦瑶 巧云 爱华 月娥 翠萍 美玲 金凤 玉兰"
).split()


def mobile(rng: random.Random) -> str:
    """A mainland mobile number of the 13x/15x ranges."""
    prefix = rng.choice(("13", "15"))
    third = rng.choice("0123456789" if prefix == "13" else "012356789")
    return f"{prefix}{third}{rng.randint(0, 99_999_999):08d}"


@dataclass
class Person:
    name: str
    id_number: str | None
    phone: str
    address: str


# Case texts ----------------------------------------------------------------------------------
# Placeholders: {a} applicant/petitioner, {b} respondent, {v} village, {n} 村民小组, {m} amount,
# {k} headcount, {y} year.


@dataclass(frozen=True)
class DisputeText:
    category: str
    title: str
    description: str
    agreement: str
    amount: tuple[int, int] = (500, 5000)
    elder: bool = False


DISPUTE_TEXTS: tuple[DisputeText, ...] = (
    DisputeText(
        "LL",
        "{a}与{b}因翻建院墙界址引发邻里纠纷",
        "{a}翻建自家院墙，邻居{b}认为新墙向其宅基地一侧越界约30厘米，双方多次争吵，"
        "{b}阻止施工至今。{a}请求调解。",
        "一、{a}将新建院墙按原墙基线退回重砌，费用自理；二、{b}不再阻挠施工；"
        "三、双方今后和睦相处，互不追究。",
    ),
    DisputeText(
        "LL",
        "{a}与{b}因排水沟堵塞雨水倒灌发生纠纷",
        "{b}在两家之间的排水沟上加盖水泥板后排水不畅，大雨时雨水倒灌进{a}家院内，"
        "双方发生口角并有推搡。",
        "一、{b}于七日内拆除水泥盖板并清理排水沟；二、{b}补偿{a}家被淹损失{m}元；"
        "三、排水沟今后由两家共同维护。",
        (300, 3000),
    ),
    DisputeText(
        "LL",
        "{a}与{b}因门前杨树遮挡采光发生纠纷",
        "{b}在屋后种植的多棵杨树已高过{a}家二层楼顶，遮挡采光且落叶堵塞房顶排水，"
        "{a}多次要求砍伐未果。",
        "一、{b}于一个月内自行砍伐靠近{a}家的三棵杨树；二、{a}不再主张其他赔偿。",
    ),
    DisputeText(
        "HYJT",
        "{a}与子女{b}等赡养纠纷",
        "{a}年逾七旬，丧偶独居，三个子女对赡养费分担和轮流照料有分歧，已三个月未给付"
        "生活费，{a}到调委会申请调解。",
        "一、三名子女每人每月向{a}支付赡养费{m}元，于每月5日前付清；二、{a}的医疗费凭票据"
        "由三名子女平均分担；三、三名子女按月轮流照料{a}的日常生活。",
        (300, 800),
        elder=True,
    ),
    DisputeText(
        "HYJT",
        "{a}与{b}离婚后子女抚养费纠纷",
        "{a}与{b}于前年协议离婚，约定{b}每月支付孩子抚养费，{b}外出务工后已有八个月未付。",
        "一、{b}于本月底前补付拖欠的抚养费{m}元；二、此后每月10日前通过银行转账支付抚养费；"
        "三、{a}保障{b}每月探望孩子两次。",
        (3000, 12000),
    ),
    DisputeText(
        "HYJT",
        "{a}与{b}兄弟间分割父母遗留房屋纠纷",
        "父母去世后留下三间平房，{a}与{b}对房屋的居住和分割意见不一，矛盾激化。",
        "一、房屋东两间归{a}、西一间归{b}；二、{a}补偿{b}{m}元；三、院落共同使用。",
        (10000, 40000),
    ),
    DisputeText(
        "FWZJD",
        "{a}与{b}宅基地界址纠纷",
        "两家宅基地相邻，{b}建房时占用{a}家宅基地约半米，{a}要求拆除，{b}不同意。",
        "一、按宅基地使用证确定界址；二、{b}补偿{a}{m}元，{a}不再要求拆除已建部分；"
        "三、双方在界址处共同设置界桩。",
        (2000, 15000),
    ),
    DisputeText(
        "SLTD",
        "{a}与{b}土地承包经营权地界纠纷",
        "{a}与{b}在{v}{n}组的承包地相邻，{b}耕种时越过地界，毁坏{a}已播种的小麦约0.3亩。",
        "一、按二轮延包确权图重新确定地界并埋设界桩；二、{b}赔偿{a}青苗损失{m}元。",
        (300, 2000),
    ),
    DisputeText(
        "SLTD",
        "{a}与{b}土地流转租金纠纷",
        "{a}将15亩承包地流转给{b}种植花卉苗木，{b}拖欠{y}年度租金{m}元，多次催要未果。",
        "一、{b}分两次付清拖欠租金{m}元，首期于本月内支付；二、流转合同继续履行。",
        (8000, 30000),
    ),
    DisputeText(
        "HT",
        "{a}与{b}民间借贷纠纷",
        "{b}前年向{a}借款{m}元用于购买农机，约定一年归还，到期后经多次催要仍未归还。",
        "一、{b}分三期归还借款{m}元，每期间隔一个月；二、{a}放弃利息主张；"
        "三、如任一期未按时归还，{a}可就全部余款申请强制执行。",
        (5000, 60000),
    ),
    DisputeText(
        "SCJY",
        "{a}与{b}合伙经营花卉大棚散伙纠纷",
        "{a}与{b}合伙承包大棚种植月季，因经营理念不合决定散伙，对设备和苗木的折价分配有争议。",
        "一、大棚设施归{b}所有，{b}补偿{a}{m}元；二、现存苗木按各半分配；三、合伙债务各半承担。",
        (10000, 50000),
    ),
    DisputeText(
        "SHPC",
        "{a}被{b}家犬只咬伤赔偿纠纷",
        "{a}途经{b}家门口时被其未拴养的犬只咬伤小腿，花去医疗费及狂犬疫苗费用{m}元，"
        "双方对赔偿数额有争议。",
        "一、{b}一次性赔偿{a}医疗费、误工费共计{m}元；二、{b}今后拴养犬只。",
        (800, 4000),
    ),
    DisputeText(
        "SHPC",
        "{a}与{b}因琐事打架致伤赔偿纠纷",
        "{a}与{b}在集市上因摊位位置发生争执，继而互相推打，{a}面部受轻微伤。"
        "派出所出警后认为情节轻微，引导双方调解。",
        "一、{b}向{a}赔礼道歉；二、{b}赔偿{a}医疗费、误工费共计{m}元；三、双方互不追究。",
        (500, 3000),
    ),
    DisputeText(
        "ZDCQ",
        "{a}与{b}产业园区征地青苗补偿款分配纠纷",
        "胖东来高新技术产业园区项目征收{v}{n}组土地，{a}与{b}兄弟二人对父母名下承包地的"
        "青苗补偿款{m}元如何分配有争议。",
        "一、补偿款{m}元由{a}与{b}各得一半；二、父母的赡养由二人共同负担。",
        (20000, 80000),
    ),
    DisputeText(
        "HJWR",
        "{a}与{b}养殖场异味噪音纠纷",
        "{b}在村西头经营生猪养殖场，粪污处理不及时，异味和噪音影响{a}等周边住户生活。",
        "一、{b}于一个月内完善粪污处理设施并定期清运；二、{b}补偿{a}{m}元；"
        "三、村委会负责监督整改。",
        (500, 3000),
    ),
    DisputeText(
        "LDZY",
        "{a}等人与包工头{b}追索劳务报酬纠纷",
        "{a}等5人在城南商贸物流园区某工地从事钢筋工，完工后包工头{b}以未结算为由拖欠"
        "工资共计{m}元。",
        "一、{b}于本月25日前一次性支付拖欠工资{m}元；二、{a}等人不再就此事上访。",
        (20000, 90000),
    ),
    DisputeText(
        "JTSG",
        "{a}与{b}电动车与三轮车相撞交通事故赔偿纠纷",
        "{a}驾驶电动自行车在镇区中心路与{b}驾驶的农用三轮车相撞，{a}左腿骨折。"
        "交警认定{b}负主要责任，双方对医疗费、误工费赔偿数额有争议。",
        "一、{b}赔偿{a}医疗费、误工费、护理费等各项损失共计{m}元；二、已垫付的医疗费予以扣除。",
        (10000, 50000),
    ),
    DisputeText(
        "XF",
        "{a}与农资店经营者{b}种子质量纠纷",
        "{a}在{b}经营的农资店购买玉米种子，播种后出苗率不足五成，要求赔偿损失。",
        "一、{b}退还种子款并补偿{a}补种费用及减产损失共计{m}元。",
        (1000, 6000),
    ),
    DisputeText(
        "YL",
        "{a}与村卫生室医生{b}诊疗纠纷",
        "{a}在村卫生室输液后出现过敏反应，经镇卫生院抢救后好转，{a}认为{b}用药前未做皮试。",
        "一、{b}补偿{a}医疗费、误工费共计{m}元；二、卫生室完善用药告知和皮试制度。",
        (3000, 15000),
    ),
    DisputeText(
        "WY",
        "{a}与{b}小区车位占用纠纷",
        "{b}长期在{a}购买的车位上停放货车，{a}多次交涉未果，双方发生争吵。",
        "一、{b}即日起不再占用{a}的车位；二、社区协调{b}在公共停车区停放。",
    ),
    DisputeText(
        "CWGL",
        "{a}与村民小组长{b}集体土地收益分配纠纷",
        "{v}{n}组集体机动地出租收益分配时，{a}认为其外嫁女儿户口仍在本组，应享有同等分配，"
        "小组长{b}不同意。",
        "一、按村民小组会议决议，{a}女儿享有同等分配份额，补发{m}元；二、今后按户籍人口分配。",
        (500, 3000),
    ),
    DisputeText(
        "QT",
        "{a}与{b}因办事占道搭棚发生纠纷",
        "{b}家办丧事在村内道路搭棚三天，{a}家运输车辆无法通行，双方发生争吵。",
        "一、{b}向{a}赔礼道歉；二、今后办事搭棚须提前告知并预留通道。",
    ),
)
DISPUTE_CATEGORY_WEIGHTS = {
    "LL": 18,
    "HYJT": 16,
    "FWZJD": 9,
    "SLTD": 10,
    "HT": 8,
    "LDZY": 7,
    "JTSG": 8,
    "SHPC": 7,
    "SCJY": 4,
    "ZDCQ": 3,
    "HJWR": 3,
    "XF": 2,
    "YL": 2,
    "WY": 2,
    "CWGL": 3,
    "QT": 2,
}


@dataclass(frozen=True)
class PetitionText:
    category: str
    petition_type: str
    title: str
    description: str
    opinion: str
    amount: tuple[int, int] = (1000, 10000)
    collective: bool = False
    accusation: bool = False
    # Used for 导入法定程序 / 不予受理 only.
    procedure: str = ""
    basis: str = ""


PETITION_TEXTS: tuple[PetitionText, ...] = (
    PetitionText(
        "P-LDSB",
        "complaint",
        "{v}村民{a}等{k}人反映物流园区工地拖欠农民工工资问题",
        "{a}等{k}人在城南商贸物流园区某建设项目务工，工程完工后施工方以未收到工程款为由"
        "拖欠工资共计{m}元，多次讨要未果，请求协调解决。",
        "经调查核实，施工方确拖欠{a}等人工资{m}元。已责令其于十五日内足额支付，"
        "由区人社局劳动监察大队跟踪督促。",
        (40000, 150000),
        collective=True,
    ),
    PetitionText(
        "P-NCNY",
        "complaint",
        "{a}反映耕地地力保护补贴未足额发放问题",
        "{a}称其家庭承包地8.5亩，近两年耕地地力保护补贴只按6亩发放，要求补发。",
        "经核查，{a}家确权面积为8.5亩，因台账录入错误少报2.5亩。已更正台账并补发补贴{m}元。",
        (200, 800),
    ),
    PetitionText(
        "P-GTZY",
        "complaint",
        "{a}反映产业园区项目征地补偿标准问题",
        "{a}认为胖东来高新技术产业园区项目征收其家承包地的补偿标准偏低，与邻村不一致。",
        "经核实，该项目补偿严格执行省政府公布的区片综合地价，标准全镇统一；对{a}提出的地上"
        "附着物漏登问题，已补充登记并补偿{m}元。",
        (1000, 8000),
    ),
    PetitionText(
        "P-CXJS",
        "suggestion",
        "{a}建议修缮{v}内主干道路并增设路灯",
        "{a}反映{v}内主干道路破损严重，夜间无照明，群众出行不便，建议修缮并增设路灯。",
        "感谢您的建议。{v}主干道路修缮已列入明年村内道路提升计划，路灯安装将于本季度完成。",
    ),
    PetitionText(
        "P-CXJS",
        "complaint",
        "{a}反映邻居{b}违规加层建房影响采光问题",
        "{a}反映邻居{b}未经审批在原有两层住房上加盖第三层，严重影响其家采光通风。",
        "经镇综合行政执法大队调查，{b}加层建房未办理乡村建设规划许可，已依法责令停止建设"
        "并限期拆除加盖部分。",
    ),
    PetitionText(
        "P-MZ",
        "complaint",
        "{a}反映家庭申请最低生活保障未获批准问题",
        "{a}称其丈夫常年患病，家庭收入低，申请低保后未获批准，请求重新审核。",
        "经入户核查，{a}家庭人均收入低于本地低保标准，符合条件，已纳入最低生活保障范围，"
        "自下月起按月发放。",
    ),
    PetitionText(
        "P-HJBH",
        "complaint",
        "{a}反映{v}附近养殖场粪污直排、异味扰民问题",
        "{a}反映村外一家养殖场将粪污直接排入沟渠，夏季异味严重，影响周边群众生活。",
        "经现场检查，该养殖场粪污处理设施运行不正常，已责令限期整改，整改期间由镇生态环境"
        "工作站每周复查。",
    ),
    PetitionText(
        "P-JJJC",
        "accusation",
        # 检举控告: the accuser's name stays out of the title and summary (Art 30 ¶3).
        "群众举报{v}村干部在集体土地发包中优亲厚友问题",
        "信访人举报{v}村干部在集体机动地发包时未经村民代表会议，将土地低价发包给亲属。",
        "经调查，该地块发包确未履行民主程序，已责令重新公开发包，对相关村干部进行诫勉谈话。",
        accusation=True,
    ),
    PetitionText(
        "P-WSJK",
        "complaint",
        "{a}反映村卫生室收费不规范问题",
        "{a}反映村卫生室输液收费高于公示价格，且未开具票据。",
        "经区卫健委核查，该卫生室存在超标准收费问题，已责令退还多收费用{m}元并规范收费公示。",
        (50, 500),
    ),
    PetitionText(
        "P-QT",
        "complaint",
        "{a}反映镇区集市摊位费收取问题",
        "{a}反映镇区集市管理人员收取摊位费没有依据、标准不一。",
        "经查，集市摊位费收取标准经镇政府研究确定并已公示；对个别人员多收问题已责令退还。",
    ),
)
NOT_ACCEPTED_TEXTS = (
    PetitionText(
        "P-ZF",
        "complaint",
        "{a}对法院已生效判决不服再次反映借贷纠纷问题",
        "{a}与{b}借贷纠纷一案已经人民法院判决生效，{a}对判决不服，要求政府出面解决。",
        "",
        basis="litigation",
    ),
    PetitionText(
        "P-GTZY",
        "complaint",
        "{a}就已复核终结事项再次反映宅基地确权问题",
        "{a}再次反映其宅基地确权面积问题，该事项已于去年经复核终结。",
        "",
        basis="final",
    ),
    PetitionText(
        "P-NCNY",
        "complaint",
        "{a}就正在办理中的土地流转租金问题重复反映",
        "{a}就土地流转租金问题向区、镇两级重复反映，该事项正在镇信访办办理中。",
        "",
        basis="same_matter_in_progress",
    ),
)
DIVERTED_TEXTS = (
    PetitionText(
        "P-ZF",
        "complaint",
        "{a}对派出所治安处罚决定不服",
        "{a}因与{b}发生殴打被派出所处以行政拘留五日，{a}认为处罚过重。",
        "",
        procedure="administrative_review",
    ),
    PetitionText(
        "P-LDSB",
        "complaint",
        "{a}反映被企业辞退未获经济补偿问题",
        "{a}在镇内某机械厂工作六年，被辞退后未获经济补偿，要求处理。",
        "",
        procedure="arbitration",
    ),
    PetitionText(
        "P-ZF",
        "complaint",
        "{a}反映{b}拖欠货款不还问题",
        "{b}拖欠{a}花卉苗木货款{m}元，{a}要求政府帮助追讨。",
        "",
        (5000, 40000),
        procedure="litigation",
    ),
)

# State targets -------------------------------------------------------------------------------

DISPUTE_WEIGHTS = {
    DisputeState.REGISTERED: 4,
    DisputeState.TRIAGED: 3,
    DisputeState.ASSIGNED: 5,
    DisputeState.ACCEPTED: 4,
    DisputeState.MEDIATING: 14,
    DisputeState.EXTENDED: 4,
    DisputeState.SUSPENDED: 3,
    DisputeState.AGREEMENT_REACHED: 4,
    DisputeState.CONFIRMATION_PENDING: 4,
    DisputeState.PERFORMANCE_MONITORING: 6,
    DisputeState.ESCALATED: 3,
    DisputeState.CLOSED_RESOLVED: 26,
    DisputeState.CLOSED_FAILED: 6,
    DisputeState.CLOSED_REFUSED: 3,
    DisputeState.WITHDRAWN: 3,
    DisputeState.TRANSFERRED: 4,
}
PETITION_WEIGHTS = {
    PetitionState.RECEIVED: 2,
    PetitionState.REGISTERED: 4,
    PetitionState.FORWARDED: 4,
    PetitionState.NOT_ACCEPTED: 3,
    PetitionState.DIVERTED: 3,
    PetitionState.ACCEPTED: 4,
    PetitionState.HANDLING: 12,
    PetitionState.EXTENDED: 4,
    PetitionState.MEDIATED: 4,
    PetitionState.OPINION_ISSUED: 6,
    PetitionState.REVIEW_REQUESTED: 2,
    PetitionState.UNDER_REVIEW: 3,
    PetitionState.REVIEW_OPINION_ISSUED: 3,
    PetitionState.REREVIEW_REQUESTED: 2,
    PetitionState.UNDER_REREVIEW: 3,
    PetitionState.FINAL: 3,
    PetitionState.CLOSED: 20,
}
# Days a case has sat in its final state: short for intake states (so a few are overdue),
# up to weeks for long periods.
TAIL_DAYS: dict[str, tuple[float, float]] = {
    "d:registered": (0.05, 4),
    "d:triaged": (0.05, 3),
    "d:assigned": (0.1, 7),
    "d:accepted": (0.1, 5),
    "d:mediating": (1, 30),
    "d:extended": (1, 25),
    "d:suspended": (1, 20),
    "d:agreement_reached": (1, 35),
    "d:confirmation_pending": (1, 30),
    "d:performance_monitoring": (1, 25),
    "d:escalated": (0.1, 5),
    "p:received": (0.02, 1.5),
    "p:registered": (0.5, 20),
    "p:forwarded": (0.5, 12),
    "p:accepted": (0.5, 8),
    "p:handling": (1, 55),
    "p:extended": (1, 40),
    "p:mediated": (1, 15),
    "p:opinion_issued": (1, 40),
    "p:review_requested": (0.5, 6),
    "p:under_review": (1, 40),
    "p:review_opinion_issued": (1, 40),
    "p:rereview_requested": (0.5, 6),
    "p:under_rereview": (1, 40),
}
TERMINAL_TAIL = (0.5, 60)
OVERDUE_EXAMPLE = (CaseKind.PETITION, PetitionState.HANDLING)

# Plans ---------------------------------------------------------------------------------------

DataFn = Callable[["Step"], dict[str, Any]]


@dataclass
class Move:
    actor: str
    name: str  # a transition, or "refer", "pause_clock", "resume_clock"
    gap: tuple[float, float]  # typical days since the previous move
    data: DataFn | None = None


@dataclass
class Step:
    """What a data function sees: the plan, the case as the last service returned it, today."""

    plan: Plan
    case: Case
    today: dt.date


@dataclass
class Plan:
    kind: str
    target: str
    actor: str  # who registers
    channel: str
    category: str
    texts: dict[str, str]
    parties: list[PartyInput]
    moves: list[Move]
    tail: float
    extra: dict[str, Any] = field(default_factory=dict)
    child_moves: list[Move] = field(default_factory=list)
    child_tail: float = 0.0
    times: list[dt.datetime] = field(default_factory=list)


class DemoBuilder:
    def __init__(self, *, rng: random.Random, now: dt.datetime) -> None:
        self.rng = rng
        # Times come from a stream of their own: how many draws a schedule takes depends on the
        # date (office hours, clashes), and the case mix must not change with the day it is
        # loaded on (README states its figures).
        self.timing = random.Random(rng.getrandbits(64))  # noqa: S311 (demo data, not secrets)
        self.now = now
        self.agencies = {a.code: a for a in Agency.objects.filter(code__in=DEMO_AGENCY_CODES)}
        self.users = {
            u.username: u for u in User.objects.filter(username__in=[u[0] for u in USERS])
        }
        self.categories = dict(Category.objects.values_list("code", "pk"))
        self.channels = dict(Channel.objects.values_list("code", "pk"))
        self.used_ids: set[str] = set()
        self.ruling_seq = 0

    # People

    def person(self, *, village: str, min_age: int = 22, max_age: int = 72) -> Person:
        rng = self.rng
        male = rng.random() < 0.55
        given = rng.choice(MALE_GIVEN if male else FEMALE_GIVEN)
        name = rng.choice(SURNAMES) + given
        today = local_date(self.now)
        while True:
            age_days = rng.randint(min_age * 365 + 30, max_age * 365)
            born = today - dt.timedelta(days=age_days)
            seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
            first17 = f"{REGION_CODE}{born:%Y%m%d}{seq:03d}"
            number = first17 + idnumbers.check_code(first17)
            if number not in self.used_ids:
                self.used_ids.add(number)
                break
        phone = mobile(rng)
        if village.endswith("社区"):
            address = f"河南省许昌市建安区将官池镇{village}{rng.randint(1, 12)}号楼"
        else:
            address = f"河南省许昌市建安区将官池镇{village}{rng.randint(1, 9)}组"
        return Person(name=name, id_number=number, phone=phone, address=address)

    @staticmethod
    def party(person: Person, role: str, *, with_id: bool = True) -> PartyInput:
        return PartyInput(
            name=person.name,
            role=role,
            id_number=person.id_number if with_id else None,
            phone=person.phone,
            address=person.address,
        )

    def amount(self, bounds: tuple[int, int]) -> int:
        lo, hi = bounds
        return self.rng.randint(lo // 100, hi // 100) * 100

    def fill(self, template: str, values: dict[str, Any]) -> str:
        return template.format(**values)

    # Disputes

    def plan_dispute(self, target: str) -> Plan:
        rng = self.rng
        intake = rng.choices(
            ("center", "judicial", "police", "court", "committee"), (45, 15, 20, 10, 10)
        )[0]
        allowed = {
            "judicial": {"HYJT", "FWZJD", "SLTD", "HT", "LL", "QT"},
            "police": {"LL", "SHPC", "JTSG", "HYJT"},
            "court": {"HT", "JTSG", "HYJT", "SCJY", "WY"},
        }.get(intake)
        cats = [c for c in DISPUTE_CATEGORY_WEIGHTS if allowed is None or c in allowed]
        category = rng.choices(cats, [DISPUTE_CATEGORY_WEIGHTS[c] for c in cats])[0]
        text = rng.choice([t for t in DISPUTE_TEXTS if t.category == category])
        village = rng.choice(VILLAGES)
        a = self.person(
            village=village, min_age=70 if text.elder else 22, max_age=88 if text.elder else 72
        )
        b = self.person(village=village if rng.random() < 0.8 else rng.choice(VILLAGES))
        values = {
            "a": a.name,
            "b": b.name,
            "v": village,
            "n": rng.randint(1, 9),
            "m": self.amount(text.amount),
            "y": local_date(self.now).year - 1,
        }
        texts = {
            "title": self.fill(text.title, values),
            "description": self.fill(text.description, values),
            "agreement": "经调解，双方自愿达成如下协议：" + self.fill(text.agreement, values),
        }
        parties = [
            self.party(a, CasePartyRole.APPLICANT),
            self.party(b, CasePartyRole.RESPONDENT, with_id=rng.random() < 0.85),
        ]
        channel, registrar, triager = {
            "center": (
                rng.choice(
                    ("visit", "grid", "hotline_12345", "government", "phone", "party_application")
                ),
                "duban1",
                "duban1",
            ),
            "judicial": (rng.choice(("party_application", "visit")), "sifa1", "sifa1"),
            "police": ("police", "jingcha1", "duban1"),
            "court": ("court", "shuji1", "duban1"),
            "committee": ("committee_initiative", "tiaojie1", "duban1"),
        }[intake]
        if category == "LDZY":
            track = MediationTrack.LABOUR
        elif category == "YL":
            track = MediationTrack.MEDICAL
        elif intake == "court":
            track = MediationTrack.COURT_ENTRUSTED
        else:
            track = MediationTrack.PEOPLE_MONTH if rng.random() < 0.1 else MediationTrack.PEOPLE
        referral_kind = {
            "police": ReferralKind.POLICE_MEDIATION,
            "court": ReferralKind.COURT_MEDIATION,
        }.get(intake, ReferralKind.ASSIGN)
        holder = {"judicial": "jgc-sfs", "committee": "jgc-tjwyh"}.get(intake, "")
        mediator_agency = self.pick_mediation_agency(village, intake=intake, exclude=holder)
        plan = Plan(
            kind=CaseKind.DISPUTE,
            target=target,
            actor=registrar,
            channel=channel,
            category=category,
            texts=texts,
            parties=parties,
            moves=[],
            tail=0.0,
            extra={"track": track, "risk": RiskLevel.LOW, "village": village},
        )
        plan.moves = self.dispute_moves(
            plan,
            triager=triager,
            mediator_agency=mediator_agency,
            referral_kind=referral_kind,
            exclude=holder,
        )
        plan.tail = rng.uniform(*TAIL_DAYS.get(f"d:{target}", TERMINAL_TAIL))
        return plan

    def pick_mediation_agency(self, village: str, *, intake: str, exclude: str) -> str:
        rng = self.rng
        if intake in ("police", "court"):
            options = ["jgc-tjwyh"]
        else:
            options = ["jgc-tjwyh", "jgc-tjwyh", "jgc-sfs"]
            local = VILLAGE_COMMITTEES.get(village)
            if local in ("jgc-v-qh", "jgc-v-nsz"):
                options += [local, local, local]
            else:
                options.append(rng.choice(("jgc-v-qh", "jgc-v-nsz")))
        options = [o for o in options if o != exclude] or ["jgc-v-qh"]
        return rng.choice(options)

    def mediator_of(self, agency_code: str) -> str:
        if agency_code == "jgc-tjwyh":
            return self.rng.choice(("tiaojie1", "tiaojie1", "tiaojie4"))
        return {"jgc-v-qh": "tiaojie2", "jgc-v-nsz": "tiaojie3", "jgc-sfs": "sifa1"}[agency_code]

    def dispute_moves(
        self, plan: Plan, *, triager: str, mediator_agency: str, referral_kind: str, exclude: str
    ) -> list[Move]:
        rng = self.rng
        target = plan.target
        S = DisputeState
        moves: list[Move] = []
        if target == S.REGISTERED:
            return moves
        risk = rng.choices(RiskLevel.values, (70, 24, 6))[0]
        category_pk = self.categories.get(plan.category)
        moves.append(
            Move(
                triager,
                "triage",
                (0.05, 1.2),
                lambda s, risk=risk, pk=category_pk: {"risk_level": risk, "category": pk},
            )
        )
        if target == S.TRIAGED:
            return moves
        if target == S.TRANSFERRED and rng.random() < 0.5:
            moves.append(Move(triager, "transfer", (0.05, 2), self.transfer_data))
            return moves

        def assign(code: str) -> Move:
            return Move(
                triager,
                "assign",
                (0.02, 1),
                lambda s, pk=self.agencies[code].pk: {
                    "to_agency": pk,
                    "referral_kind": referral_kind,
                },
            )

        if target != S.ASSIGNED and rng.random() < 0.12:
            others = [
                c
                for c in ("jgc-tjwyh", "jgc-v-qh", "jgc-v-nsz", "jgc-sfs")
                if c not in (mediator_agency, exclude)
            ]
            first = rng.choice(others)
            moves += [
                assign(first),
                Move(
                    self.mediator_of(first),
                    "decline",
                    (0.1, 2),
                    lambda s: {"reason": "本村调委会人手不足且当事人不在本辖区，建议另行交办。"},
                ),
            ]
        moves.append(assign(mediator_agency))
        if target == S.ASSIGNED:
            return moves
        mediator = self.mediator_of(mediator_agency)
        moves.append(Move(mediator, "accept", (0.1, 2.5)))
        if target == S.ACCEPTED:
            return moves
        if target == S.CLOSED_REFUSED:
            moves.append(
                Move(
                    mediator,
                    "refuse",
                    (0.1, 3),
                    lambda s: {"reason": "被申请人明确表示拒绝调解（人民调解法第十七条）。"},
                )
            )
            return moves
        moves.append(Move(mediator, "start_mediation", (0, 2)))
        # Detours some cases took before their final state.
        mid_states = {
            S.MEDIATING,
            S.AGREEMENT_REACHED,
            S.CONFIRMATION_PENDING,
            S.PERFORMANCE_MONITORING,
            S.CLOSED_RESOLVED,
            S.CLOSED_FAILED,
        }
        if target in mid_states and rng.random() < 0.15:
            moves += [
                Move(mediator, "suspend", (2, 10), lambda s: {"reason": "等待伤情鉴定结论"}),
                Move(mediator, "resume", (5, 20)),
            ]
        if target in mid_states and rng.random() < 0.12:
            moves += [
                Move(mediator, "extend", (15, 27), self.extend_dispute_data),
                Move(mediator, "continue_mediation", (0.5, 3)),
            ]
        end: list[Move] = {
            S.MEDIATING: [],
            S.EXTENDED: [Move(mediator, "extend", (15, 27), self.extend_dispute_data)],
            S.SUSPENDED: [
                Move(mediator, "suspend", (2, 12), lambda s: {"reason": "等待伤情鉴定结论"})
            ],
            S.WITHDRAWN: [
                Move(
                    mediator,
                    "withdraw",
                    (2, 15),
                    lambda s: {"reason": "双方已自行和解，申请人撤回调解申请。"},
                )
            ],
            S.ESCALATED: [
                Move(
                    mediator,
                    "escalate",
                    (5, 20),
                    lambda s: {
                        "reason": "纠纷涉及多户、矛盾易激化，本级调解难度大，提请上级调解。"
                    },
                )
            ],
            S.CLOSED_FAILED: self.failed_moves(mediator),
            S.TRANSFERRED: [
                self.close_failed_move(mediator),
                Move(mediator, "transfer", (1, 5), self.transfer_data),
            ],
        }.get(target)
        if end is not None:
            return moves + end
        moves.append(Move(mediator, "record_agreement", (3, 22), self.agreement_data))
        if target == S.AGREEMENT_REACHED:
            return moves
        if target == S.CONFIRMATION_PENDING or rng.random() < 0.35:
            moves.append(Move(mediator, "apply_confirmation", (1, 15), self.confirmation_data))
            if target == S.CONFIRMATION_PENDING:
                return moves
            # The clerk of the court the parties applied to records its ruling.
            moves.append(Move("shuji1", "confirm", (3, 14), self.ruling_data))
        else:
            moves.append(Move(mediator, "monitor_performance", (0, 2)))
        if target == S.PERFORMANCE_MONITORING:
            return moves
        if rng.random() < 0.08:
            moves += [
                Move(
                    mediator,
                    "remediate",
                    (7, 15),
                    lambda s: {"reason": "被申请人未按期履行协议，双方同意重新调解。"},
                ),
                Move(mediator, "record_agreement", (3, 10), self.agreement_data),
                Move(mediator, "monitor_performance", (0, 2)),
            ]
        moves.append(Move(mediator, "close_resolved", (5, 25), self.follow_up_data))
        return moves

    def failed_moves(self, mediator: str) -> list[Move]:
        if self.rng.random() < 0.2:
            return [
                Move(mediator, "record_agreement", (3, 20), self.agreement_data),
                Move(mediator, "apply_confirmation", (1, 10), self.confirmation_data),
                Move(
                    "shuji1",
                    "reject_confirmation_fail",
                    (3, 12),
                    lambda s: {"reason": "人民法庭裁定驳回司法确认申请，当事人决定起诉。"},
                ),
            ]
        return [self.close_failed_move(mediator)]

    @staticmethod
    def close_failed_move(mediator: str) -> Move:
        return Move(
            mediator,
            "close_failed",
            (8, 28),
            lambda s: {
                "reason": "经多次调解，双方对赔偿数额分歧较大，无法达成协议。",
                "routes_explained": True,
            },
        )

    def transfer_data(self, s: Step) -> dict[str, Any]:
        target = self.rng.choice(("litigation", "litigation", "arbitration", "administrative"))
        return {"target": target, "note": "已告知当事人相关途径并移交材料。"}

    def extend_dispute_data(self, s: Step) -> dict[str, Any]:
        return {
            "reason": "双方同意延长调解期限，待补充证据后继续调解。",
            "extra_days": self.rng.choice((15, 15, 30)),
            "parties_consented": True,
        }

    def agreement_data(self, s: Step) -> dict[str, Any]:
        due = s.today + dt.timedelta(days=self.rng.choice((3, 7, 10, 15, 30)))
        return {
            "form": "written" if self.rng.random() < 0.85 else "oral",
            "text": s.plan.texts["agreement"],
            "performance_due_on": due.isoformat(),
        }

    def confirmation_data(self, s: Step) -> dict[str, Any]:
        return {"court": self.agencies["jgc-court"].pk}

    def ruling_data(self, s: Step) -> dict[str, Any]:
        self.ruling_seq += 1
        return {"ruling_number": f"({s.today.year})豫1003民特{100 + self.ruling_seq}号"}

    def follow_up_data(self, s: Step) -> dict[str, Any]:
        return {
            "performed": True,
            "satisfaction": self.rng.choices(("satisfied", "basic"), (80, 20))[0],
            "note": "电话回访，协议已履行完毕。",
        }

    # Petitions

    def plan_petition(self, target: str) -> Plan:
        rng = self.rng
        P = PetitionState
        if target == P.NOT_ACCEPTED:
            text = rng.choice(NOT_ACCEPTED_TEXTS)
        elif target == P.DIVERTED:
            text = rng.choice(DIVERTED_TEXTS)
        else:
            text = rng.choice(PETITION_TEXTS)
        if target == P.FORWARDED:
            intake = "county"
        else:
            intake = rng.choices(("township", "county", "center"), (55, 30, 15))[0]
        village = rng.choice(VILLAGES)
        a = self.person(village=village, min_age=28, max_age=75)
        b = self.person(village=village)
        headcount = rng.randint(6, 14) if text.collective else 1
        values = {
            "a": a.name,
            "b": b.name,
            "v": village,
            "k": headcount,
            "m": self.amount(text.amount),
            "y": local_date(self.now).year - 1,
            "n": rng.randint(1, 9),
        }
        texts = {
            "title": self.fill(text.title, values),
            "description": self.fill(text.description, values),
            "opinion": self.fill(text.opinion, values) if text.opinion else "",
            "agreement": "经访调对接调解，双方自愿达成如下协议：一、有关方面于十五日内解决"
            f"{a.name}反映的问题；二、{a.name}不再就同一事项重复信访。",
        }
        parties = [self.party(a, CasePartyRole.PETITIONER, with_id=rng.random() < 0.9)]
        if text.collective:
            for _ in range(rng.randint(2, 4)):
                rep = self.person(village=rng.choice(VILLAGES))
                parties.append(self.party(rep, CasePartyRole.REPRESENTATIVE))
        registrar, channel = {
            "township": ("xinfang1", rng.choice(("visit", "visit", "letter", "phone", "online"))),
            "county": ("xinfang2", rng.choice(("online", "online", "letter", "visit"))),
            "center": ("duban1", "visit"),
        }[intake]
        accused = VILLAGE_COMMITTEES.get(village) if text.accusation else None
        plan = Plan(
            kind=CaseKind.PETITION,
            target=target,
            actor=registrar,
            channel=channel,
            category=text.category,
            texts=texts,
            parties=parties,
            moves=[],
            tail=rng.uniform(*TAIL_DAYS.get(f"p:{target}", TERMINAL_TAIL)),
            extra={
                "petition_type": text.petition_type,
                "headcount": headcount,
                "accused": self.agencies[accused].pk if accused else None,
                "text": text,
            },
        )
        plan.moves = self.petition_moves(plan, intake=intake, registrar=registrar)
        return plan

    def petition_moves(self, plan: Plan, *, intake: str, registrar: str) -> list[Move]:
        rng = self.rng
        P = PetitionState
        target = plan.target
        text: PetitionText = plan.extra["text"]
        moves: list[Move] = []
        if target == P.RECEIVED:
            return moves
        moves.append(
            Move(registrar, "register", (0, 1), lambda s: {"petition_type": text.petition_type})
        )
        if target == P.REGISTERED:
            return moves
        if target == P.NOT_ACCEPTED:
            moves.append(
                Move(
                    registrar,
                    "not_accept",
                    (1, 10),
                    lambda s: {
                        "basis": text.basis,
                        "reason": "依据信访工作条例有关规定，不予受理，已书面告知信访人。",
                    },
                )
            )
            return moves
        if target == P.DIVERTED:
            moves.append(
                Move(
                    registrar,
                    "divert",
                    (1, 10),
                    lambda s: {
                        "procedure": text.procedure,
                        "note": "已告知信访人依法通过法定途径解决。",
                    },
                )
            )
            return moves
        handler = "duban1" if intake == "center" else "xinfang1"
        if intake == "county":
            if target != P.FORWARDED and rng.random() < 0.15:
                moves += [
                    self.forward_move("jgc-pab"),
                    Move(
                        "duban1",
                        "raise_objection",
                        (1, 4),
                        lambda s: {
                            "reason": "该事项属于镇信访办职责范围，不属本机构职责，退回重新转送。"
                        },
                    ),
                ]
            moves.append(self.forward_move("jgc-xfb"))
            if target == P.FORWARDED:
                return moves
            moves.append(Move(handler, "accept_forwarded", (1, 8), self.accept_petition_data))
        else:
            moves.append(Move(handler, "accept", (1, 10), self.accept_petition_data))
        if target == P.ACCEPTED:
            return moves
        moves.append(Move(handler, "start_handling", (0, 3)))
        if target in (P.HANDLING, P.EXTENDED, P.OPINION_ISSUED, P.CLOSED) and rng.random() < 0.12:
            moves.append(
                Move(
                    handler,
                    "refer",
                    (2, 10),
                    lambda s: {"note": "经双方同意，转镇人民调解委员会调解（访调对接）。"},
                )
            )
            plan.child_moves = self.child_dispute_moves()
            plan.child_tail = rng.uniform(0.5, 20)
        if target == P.HANDLING:
            return moves
        if target == P.EXTENDED or (target in (P.OPINION_ISSUED, P.CLOSED) and rng.random() < 0.1):
            moves.append(Move(handler, "extend", (45, 57), self.extend_petition_data))
            if target == P.EXTENDED:
                return moves
        if target == P.MEDIATED or (target == P.CLOSED and rng.random() < 0.2):
            moves.append(Move(handler, "record_mediation", (10, 45), self.petition_mediation_data))
            if target == P.MEDIATED:
                return moves
            moves.append(Move(handler, "close", (1, 10), lambda s: {"reason": "mediated"}))
            return moves
        moves.append(Move(handler, "issue_opinion", (15, 50), self.opinion_data(1)))
        if target == P.OPINION_ISSUED:
            return moves
        if target == P.CLOSED and rng.random() < 0.75:
            reason = rng.choice(("satisfied", "satisfied", "window_lapsed"))
            gap = (2, 15) if reason == "satisfied" else (31, 40)
            moves.append(Move(handler, "close", gap, lambda s: {"reason": reason}))
            return moves
        # The district 信访局 receives the 复查 request (the next agency up, or the organ named
        # for the 综治中心), the district government the 复核 request.
        moves.append(Move("xinfang2", "request_review", (5, 25)))
        if target == P.REVIEW_REQUESTED:
            return moves
        moves.append(Move("xinfang2", "start_review", (1, 4)))
        if target == P.UNDER_REVIEW:
            return moves
        moves.append(Move("xinfang2", "issue_review_opinion", (10, 27), self.opinion_data(2)))
        if target == P.REVIEW_OPINION_ISSUED:
            return moves
        if target == P.CLOSED:
            moves.append(Move("xinfang2", "close", (31, 40), lambda s: {"reason": "window_lapsed"}))
            return moves
        moves.append(Move("duban2", "request_rereview", (5, 25)))
        if target == P.REREVIEW_REQUESTED:
            return moves
        moves.append(Move("duban2", "start_rereview", (1, 4)))
        hearing = rng.random() < (0.5 if target == P.UNDER_REREVIEW else 0.4)
        if hearing:
            moves.append(Move("duban2", "pause_clock", (2, 8)))
        if target == P.UNDER_REREVIEW:
            return moves
        if hearing:
            moves.append(Move("duban2", "resume_clock", (3, 8)))
        moves.append(Move("duban2", "issue_rereview_opinion", (10, 25), self.opinion_data(3)))
        return moves

    def forward_move(self, to_code: str) -> Move:
        pk = self.agencies[to_code].pk
        mode = ReferralKind.ASSIGN if self.rng.random() < 0.4 else ReferralKind.FORWARD

        def data(s: Step) -> dict[str, Any]:
            out: dict[str, Any] = {"to_agency": pk, "mode": mode}
            if mode == ReferralKind.ASSIGN:
                out["report_due"] = (s.today + dt.timedelta(days=60)).isoformat()
            return out

        return Move("xinfang2", "forward", (1, 10), data)

    def spawned_dispute(self, petition: Case) -> dict[str, Any]:
        """访调对接: the dispute's own title and category, as the 信访 officer names them."""
        code = PETITION_TO_DISPUTE_CATEGORY.get(
            petition.category.code if petition.category_id else "", "QT"
        )
        category = Category.objects.get(code=code)
        first = petition.case_parties.select_related("party").order_by("pk").first()
        # 检举控告: the title is seen by the accused, so it never names the petitioner.
        name = first.party.name if first and not petition.involves_accusation else "信访人"
        return {"title": f"{name}与相关方{category.name}", "category": category.pk}

    def child_dispute_moves(self) -> list[Move]:
        depth = self.rng.choice((1, 2, 3, 4, 5, 5))
        mediator = "tiaojie1"
        chain = [
            Move(mediator, "accept", (0.5, 3)),
            Move(mediator, "start_mediation", (0, 2)),
            Move(mediator, "record_agreement", (5, 20), self.agreement_data),
            Move(mediator, "monitor_performance", (0, 2)),
            Move(mediator, "close_resolved", (5, 20), self.follow_up_data),
        ]
        return chain[:depth]

    def accept_petition_data(self, s: Step) -> dict[str, Any]:
        return {"notice_served_on": s.today.isoformat()}

    def extend_petition_data(self, s: Step) -> dict[str, Any]:
        return {
            "reason": "案情复杂，需要进一步调查核实并征求有关部门意见。",
            "approver": s.case.holder_agency.head_id,
            "petitioner_notified_on": s.today.isoformat(),
        }

    def petition_mediation_data(self, s: Step) -> dict[str, Any]:
        return {
            "form": self.rng.choice(("written", "settlement")),
            "text": "经调解，信访人与有关方面就反映事项达成一致："
            + s.plan.texts["description"][:60],
        }

    def opinion_data(self, stage: int) -> DataFn:
        def data(s: Step) -> dict[str, Any]:
            rng = self.rng
            if stage == 1:
                result = rng.choices(("support", "explain", "not_support"), (40, 40, 20))[0]
                text = s.plan.texts["opinion"] or "经调查核实，现答复如下。"
            elif stage == 2:
                result = rng.choice(("explain", "not_support"))
                text = "经复查，原处理意见认定事实清楚，处理恰当，予以维持。"
            else:
                result = rng.choice(("explain", "not_support"))
                text = (
                    "经复核，维持复查意见。本意见为复核意见，"
                    "信访人就同一事实和理由再次提出的，不再受理。"
                )
            return {"result": result, "text": text, "served_on": s.today.isoformat()}

        return data

    # Timing

    def schedule(
        self, moves: list[Move], tail: float, *, start: dt.datetime | None = None
    ) -> list[dt.datetime]:
        """Times for the start and each move: strictly increasing and in the past.

        Without `start` the chain is back-dated to end about `tail` days before now (at most
        MAX_AGE_DAYS in all) and put in office hours. With `start` (a case spawned at that
        moment) the moves are squeezed in between `start` and now, so none is ever dropped.
        """
        rng = self.timing
        gaps = [rng.uniform(*m.gap) for m in moves]
        if start is not None:
            available = (self.now - start).total_seconds() / 86400
            room = max(available - tail, available / 2)
            total = sum(gaps)
            if total > room:
                gaps = [g * room / total for g in gaps]
            times = [start]
            for g in gaps:
                times.append(times[-1] + max(dt.timedelta(days=g), dt.timedelta(seconds=1)))
            return times
        total = sum(gaps) + tail
        scale = min(1.0, MAX_AGE_DAYS / total) if total > 0 else 1.0
        gaps = [g * scale for g in gaps]
        raw = self.now - dt.timedelta(days=max(total * scale, 0.05))
        times = [
            raw.astimezone(SHANGHAI).replace(
                hour=rng.randint(8, 16), minute=rng.randint(0, 59), second=0, microsecond=0
            )
        ]
        for g in gaps:
            raw = raw + dt.timedelta(days=g)
            snapped = raw.astimezone(SHANGHAI).replace(
                hour=rng.randint(8, 17), minute=rng.randint(0, 59), second=0, microsecond=0
            )
            if snapped <= times[-1]:
                snapped = times[-1] + dt.timedelta(minutes=rng.randint(5, 40))
            times.append(snapped)
        # Office hours may have pushed the last moves past now: pull them back, in order.
        cap = self.now - dt.timedelta(minutes=2)
        for i in range(len(times) - 1, -1, -1):
            limit = cap if i == len(times) - 1 else times[i + 1] - dt.timedelta(minutes=1)
            times[i] = min(times[i], limit)
        return times

    # Execution

    def register(self, plan: Plan, at: dt.datetime) -> Case:
        actor = self.users[plan.actor]
        received_on = local_date(at)
        if plan.channel in ("letter", "online", "hotline_12345") and self.rng.random() < 0.6:
            received_on -= dt.timedelta(days=self.rng.randint(1, 3))
        common = {
            "actor": actor,
            "title": plan.texts["title"],
            "description": plan.texts["description"],
            "channel_id": self.channels[plan.channel],
            "category_id": self.categories.get(plan.category),
            "received_on": received_on,
            "parties": plan.parties,
            "now": at,
        }
        if plan.kind == CaseKind.DISPUTE:
            return dispute_register(
                **common, mediation_track=plan.extra["track"], risk_level=plan.extra["risk"]
            )
        return petition_receive(
            **common,
            petition_type=plan.extra["petition_type"],
            headcount=plan.extra["headcount"],
            accused_agency_id=plan.extra["accused"],
        )

    def run_moves(
        self, plan: Plan, case: Case, moves: list[Move], times: list[dt.datetime]
    ) -> Case:
        for move, at in zip(moves, times, strict=True):
            actor = self.users[move.actor]
            today = local_date(at)
            if move.name == "refer":
                note = (move.data(Step(plan, case, today)) if move.data else {}).get("note", "")
                child = petition_refer_to_mediation(
                    petition_id=case.pk,
                    actor=actor,
                    now=at,
                    data={
                        "to_agency": self.agencies["jgc-tjwyh"].pk,
                        **self.spawned_dispute(case),
                        "note": note,
                    },
                )
                if plan.child_moves:
                    child_times = self.schedule(plan.child_moves, plan.child_tail, start=at)
                    self.run_moves(plan, child, plan.child_moves, child_times[1:])
                case = Case.objects.get(pk=case.pk).as_proxy()
            elif move.name == "pause_clock":
                live = self.rereview_clock(case)
                if live is None or live.status != ClockStatus.RUNNING or today <= live.start_date:
                    continue  # 听证 needs a running clock and a day after its start
                case_pause_clock(
                    case_id=case.pk,
                    actor=actor,
                    now=at,
                    rule_code="petition.rereview",
                    reason="组织听证（信访工作条例第三十六条第二款）",
                    on=today,
                )
            elif move.name == "resume_clock":
                live = self.rereview_clock(case)
                if live is None or live.status != ClockStatus.PAUSED:
                    continue
                case_resume_clock(
                    case_id=case.pk, actor=actor, now=at, rule_code="petition.rereview", on=today
                )
            else:
                data = move.data(Step(plan, case, today)) if move.data else {}
                case = case_transition(
                    case_id=case.pk, transition=move.name, actor=actor, now=at, data=data
                )
        return case

    @staticmethod
    def rereview_clock(case: Case) -> Clock | None:
        return Clock.objects.filter(
            case_id=case.pk,
            rule_code="petition.rereview",
            status__in=[ClockStatus.RUNNING, ClockStatus.PAUSED],
        ).first()

    def execute(self, plan: Plan) -> Case:
        times = plan.times
        case = self.register(plan, times[0])
        return self.run_moves(plan, case, plan.moves, times[1:])

    def plans(self, count: int) -> list[Plan]:
        """Every state of both machines first (so any N ≥ 33 covers them all), then by weight."""
        rng = self.rng
        targets: list[tuple[str, str]] = []
        d_states, p_states = list(DISPUTE_WEIGHTS), list(PETITION_WEIGHTS)
        for i in range(max(len(d_states), len(p_states))):
            if i < len(d_states):
                targets.append((CaseKind.DISPUTE, d_states[i]))
            if i < len(p_states):
                targets.append((CaseKind.PETITION, p_states[i]))
        targets = targets[:count]
        while len(targets) < count:
            if rng.random() < 0.6:
                targets.append(
                    (CaseKind.DISPUTE, rng.choices(d_states, list(DISPUTE_WEIGHTS.values()))[0])
                )
            else:
                targets.append(
                    (CaseKind.PETITION, rng.choices(p_states, list(PETITION_WEIGHTS.values()))[0])
                )
        out = []
        for i, (kind, target) in enumerate(targets):
            plan = (
                self.plan_dispute(target)
                if kind == CaseKind.DISPUTE
                else self.plan_petition(target)
            )
            if i < len(d_states) + len(p_states) and (kind, target) == OVERDUE_EXAMPLE:
                # One case is certainly overdue, whatever the holidays: handled for 75 days
                # on a 60-day clock (信访工作条例 Art 34) that no rest-day block stretches by 15.
                plan.tail = 75.0
            plan.times = self.schedule(plan.moves, plan.tail)
            out.append(plan)
        # Register in date order, so case numbers follow the receipt dates.
        out.sort(key=lambda p: p.times[0])
        return out


# Command -------------------------------------------------------------------------------------


class Command(BaseCommand):
    help = "载入演示数据：许昌市建安区将官池镇的机构、用户和矛盾纠纷/信访事项（可重复运行）。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, default=200, help="案件数量（默认 200）")
        parser.add_argument("--seed", type=int, default=2025, help="随机种子（默认 2025）")

    def handle(self, *args: Any, **options: Any) -> None:
        count, seed = options["cases"], options["seed"]
        if count < 0:
            raise CommandError("--cases 不能为负数")
        started = time.monotonic()
        now = system_clock.now()
        rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
        with transaction.atomic():
            agencies_created = self.load_agencies()
            users_created = self.load_users(rng)
        demo_ids = list(
            Agency.objects.filter(code__in=DEMO_AGENCY_CODES).values_list("pk", flat=True)
        )
        existing = Case.objects.filter(registering_agency_id__in=demo_ids)
        created = 0
        with transaction.atomic():
            # Two loads at once: the second waits here, then finds the cases and stops.
            Agency.objects.select_for_update().get(code=TOWNSHIP_CODE)
            if existing.exists():
                self.stdout.write("演示乡镇已有案件，未新建案件。")
                count = 0
            builder = DemoBuilder(rng=rng, now=now)
            for plan in builder.plans(count):
                try:
                    builder.execute(plan)
                except DomainError as exc:
                    # Nothing is kept: the whole load is one transaction.
                    raise CommandError(
                        f"演示案件生成失败（{plan.kind}→{plan.target}，{plan.texts['title']}）："
                        f"{exc.message} {exc.details or ''}"
                    ) from exc
            if count:
                created = existing.count()
        self.summary(
            demo_ids=demo_ids,
            agencies_created=agencies_created,
            users_created=users_created,
            cases_created=created,
            seconds=time.monotonic() - started,
        )

    def load_agencies(self) -> int:
        created = 0
        by_code: dict[str, Agency] = {}
        for code, name, kind, level, parent, prefix in AGENCIES:
            agency, was_created = Agency.objects.get_or_create(
                code=code,
                defaults={
                    "name": name,
                    "kind": kind,
                    "level": level,
                    "parent": by_code.get(parent) if parent else None,
                    "case_number_prefix": prefix,
                },
            )
            by_code[code] = agency
            created += was_created
        for agency, reviewer, note in REVIEWING_ORGANS:
            ReviewingOrgan.objects.get_or_create(
                agency=by_code[agency], reviewer=by_code[reviewer], defaults={"note": note}
            )
        return created

    def load_users(self, rng: random.Random) -> int:
        agencies = {a.code: a for a in Agency.objects.filter(code__in=DEMO_AGENCY_CODES)}
        group, _ = Group.objects.get_or_create(name=DEMO_GROUP)
        perms = [
            p
            for p in Permission.objects.filter(
                codename__in=[c for _, c in GROUP_PERMISSIONS]
            ).select_related("content_type")
            if (p.content_type.app_label, p.codename) in GROUP_PERMISSIONS
        ]
        group.permissions.add(*perms)
        reveal = Permission.objects.get(
            content_type__app_label="accounts", codename="reveal_id_number"
        )
        password_hash = ""
        created = 0
        for username, display_name, role, agency_code, is_head in USERS:
            phone = mobile(rng)
            agency = agencies[agency_code]
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(
                    username=username,
                    display_name=display_name,
                    role=role,
                    agency=agency,
                    phone=phone,
                    is_staff=True,
                    is_superuser=role == Role.ADMINISTRATOR,
                )
                # One PBKDF2 run for all the users (the demo password is public anyway).
                password_hash = password_hash or make_password(PASSWORD)
                user.password = password_hash
                user.save()
                created += 1
                user.groups.add(group)
                if role in REVEAL_ROLES:
                    user.user_permissions.add(reveal)
            if is_head and agency.head_id is None:
                agency.head = user
                agency.save(update_fields=["head"])
        return created

    def summary(
        self,
        *,
        demo_ids: list[int],
        agencies_created: int,
        users_created: int,
        cases_created: int,
        seconds: float,
    ) -> None:
        out = self.stdout
        cases = Case.objects.filter(registering_agency_id__in=demo_ids)
        out.write(
            f"机构：新建 {agencies_created} 个（共 {len(demo_ids)} 个）；"
            f"用户：新建 {users_created} 个；"
            f"案件：新建 {cases_created} 件（共 {cases.count()} 件）。"
        )
        for kind, label in CaseKind.choices:
            counts = Counter(cases.filter(kind=kind).values_list("state", flat=True))
            if not counts:
                continue
            parts = "，".join(
                f"{STATE_LABELS[kind][state]} {counts[state]}"
                for state in STATE_LABELS[kind]
                if counts.get(state)
            )
            out.write(f"{label} {sum(counts.values())} 件：{parts}")
        now = system_clock.now()
        running = Clock.objects.filter(case__in=cases, status=ClockStatus.RUNNING)
        overdue = running.filter(due_at__lt=now).count()
        out.write(
            f"计时中的期限 {running.count()} 个，其中已超期 {overdue} 个。用时 {seconds:.1f} 秒。"
        )
        out.write("")
        out.write(f"演示账号（密码均为 {PASSWORD}）：")
        roles = dict(Role.choices)
        agency_names = dict(Agency.objects.filter(pk__in=demo_ids).values_list("code", "name"))
        rows = [("用户名", "姓名", "角色", "机构", "用途")]
        rows += [
            (username, name, str(roles[role]), agency_names.get(code, ""), USER_NOTES[username])
            for username, name, role, code, _head in USERS
        ]
        widths = [max(_width(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [_pad(cell, widths[i]) for i, cell in enumerate(row[:4])]
            out.write("  " + "  ".join([*cells, row[4]]))


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
