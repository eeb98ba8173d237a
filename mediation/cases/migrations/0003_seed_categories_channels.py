"""Seed 纠纷类型, 信访内容分类 and 来源 from DOMAIN.md §3.1–§3.2 (tables, not enums)."""

from django.db import migrations

DISPUTE_CATEGORIES = [
    ("HYJT", "婚姻家庭纠纷"),
    ("LL", "邻里纠纷"),
    ("FWZJD", "房屋宅基地纠纷"),
    ("HT", "合同纠纷"),
    ("SCJY", "生产经营纠纷"),
    ("SHPC", "损害赔偿纠纷"),
    ("SLTD", "山林土地纠纷"),
    ("ZDCQ", "征地拆迁纠纷"),
    ("HJWR", "环境污染纠纷"),
    ("LDZY", "劳动争议纠纷"),
    ("XF", "消费纠纷"),
    ("YL", "医疗纠纷"),
    ("JTSG", "道路交通事故纠纷"),
    ("WY", "物业纠纷"),
    ("CWGL", "村务管理纠纷"),
    ("QT", "其他纠纷"),
]
PETITION_DOMAINS = [
    ("P-CXJS", "城乡建设"),
    ("P-GTZY", "国土资源"),
    ("P-LDSB", "劳动社保"),
    ("P-NCNY", "农村农业"),
    ("P-ZF", "政法"),
    ("P-WSJK", "卫生健康"),
    ("P-MZ", "民政"),
    ("P-HJBH", "环境保护"),
    ("P-JJJC", "纪检监察"),
    ("P-QT", "其他"),
]
CHANNELS = [
    ("visit", "来访"),
    ("letter", "来信"),
    ("phone", "来电"),
    ("online", "网上信访"),
    ("fax", "传真"),
    ("party_application", "当事人申请"),
    ("committee_initiative", "调委会主动调解"),
    ("grid", "网格员排查上报"),
    ("police", "110警情分流/派出所移交"),
    ("court", "法院委派/委托"),
    ("hotline_12345", "12345热线工单"),
    ("petition_referral", "信访转办"),
    ("government", "政府部门指定/移交"),
]


def seed(apps, schema_editor):
    Category = apps.get_model("cases", "Category")
    Channel = apps.get_model("cases", "Channel")
    for i, (code, name) in enumerate(DISPUTE_CATEGORIES):
        Category.objects.update_or_create(
            code=code, defaults={"name": name, "applies_to": "dispute", "sort_order": i}
        )
    for i, (code, name) in enumerate(PETITION_DOMAINS):
        Category.objects.update_or_create(
            code=code, defaults={"name": name, "applies_to": "petition", "sort_order": i}
        )
    for i, (code, name) in enumerate(CHANNELS):
        Channel.objects.update_or_create(code=code, defaults={"name": name, "sort_order": i})


class Migration(migrations.Migration):
    dependencies = [("cases", "0002_case_event_immutable")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
