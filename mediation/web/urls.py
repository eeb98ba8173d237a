from django.contrib.auth import views as auth_views
from django.urls import path

from mediation.web.views import (
    casefile,
    cases,
    documents,
    notifications,
    phones,
    public,
    referrals,
    register,
    stats,
    supervision,
)

app_name = "web"

urlpatterns = [
    path("", cases.home, name="home"),
    # Django's own auth views, so django-axes throttles the login like the admin's.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cases/mine/", cases.case_list, {"scope": "mine"}, name="cases_mine"),
    path("cases/agency/", cases.case_list, {"scope": "agency"}, name="cases_agency"),
    path("cases/new/<slug:kind>/", register.register_case, name="register"),
    path("cases/<int:pk>/", cases.case_detail, name="case_detail"),
    path("cases/<int:pk>/act/<slug:transition>/", cases.case_act, name="case_act"),
    path(
        "cases/<int:pk>/clocks/<str:rule>/<slug:action>/",
        cases.clock_pause,
        name="clock_pause",
    ),
    path("cases/<int:pk>/refer-to-mediation/", cases.refer_to_mediation, name="refer_mediation"),
    path(
        "cases/<int:pk>/parties/<int:party_pk>/reveal/",
        cases.party_reveal,
        name="party_reveal",
    ),
    path(
        "cases/<int:pk>/parties/<int:party_pk>/reveal-phone/",
        phones.party_reveal_phone,
        name="party_reveal_phone",
    ),
    path(
        "cases/<int:pk>/print/acceptance-notice/",
        documents.acceptance_notice,
        name="print_acceptance_notice",
    ),
    path(
        "cases/<int:pk>/print/agreement/<int:agreement_pk>/",
        documents.agreement,
        name="print_agreement",
    ),
    path("cases/<int:pk>/file/<slug:name>/", casefile.case_file_act, name="case_file_act"),
    path(
        "cases/<int:pk>/attachments/<int:attachment_pk>/",
        casefile.attachment_download,
        name="attachment_download",
    ),
    path("cases/<int:pk>/print/<slug:slug>/", casefile.print_document, name="print_document"),
    path("cases/<int:pk>/dossier.pdf", casefile.dossier_pdf, name="dossier"),
    path("referrals/", referrals.referral_inbox, name="referrals"),
    path("notifications/", notifications.inbox, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications_read"),
    path("supervision/", supervision.dashboard, name="supervision"),
    path("supervision/queue/", supervision.queue_partial, name="supervision_queue"),
    path(
        "supervision/bulk-acknowledge/", supervision.bulk_acknowledge, name="supervision_bulk_ack"
    ),
    path(
        "supervision/escalations/<int:pk>/print/",
        supervision.supervision_notice,
        name="print_supervision_notice",
    ),
    path(
        "supervision/escalations/<int:pk>/<slug:action>/",
        supervision.escalation_action,
        name="escalation_action",
    ),
    # The people's own door: no login (mediation/web/views/public.py).
    path("public/", public.public_home, name="public_home"),
    path("public/apply/", public.public_apply, name="public_apply"),
    path("public/track/", public.public_track, name="public_track"),
    path("public/track/case/", public.public_case, name="public_case"),
    path("public/track/end/", public.public_track_end, name="public_track_end"),
    path(
        "supervision/ratings/<int:pk>/reviewed/",
        supervision.rating_reviewed,
        name="rating_reviewed",
    ),
    path("stats/", stats.statistics, name="stats"),
    path("stats/export/<slug:table>.csv", stats.export_csv, name="stats_export"),
]
