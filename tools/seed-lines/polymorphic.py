from sqlalchemy import TypeDecorator, String

class Notification(Base):  
__tablename__ = "notifications"

    id = Column(Integer, primary_key=True)  
    type = Column(String)  
    __mapper_args__ = {"polymorphic_identity": "notification", "polymorphic_on": type}  

class EmailNotification(Notification):  
__tablename__ = "email_notifications"

    id = Column(Integer, ForeignKey("notifications.id"), primary_key=True)  
    email = Column(String, nullable=False)  
    __mapper_args__ = {"polymorphic_identity": "email"}  
